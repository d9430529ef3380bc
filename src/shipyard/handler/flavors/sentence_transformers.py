"""sentence-transformers encoders, alone or with a scikit-learn head: texts in, predictions (or embeddings) out.

What can be saved::

    shipyard.save(TextPipeline(encoder, head), "bundle/", example=texts[:3])   # encoder + head, one object
    shipyard.save(encoder, "bundle/", head=head, example=texts[:3])            # the same, two objects
    shipyard.save(encoder, "bundle/", example=texts[:3])                       # embeddings

Layout: ``model/encoder/`` (``SentenceTransformer.save``: config, tokenizer, safetensors weights) and, with a
head, ``model/head.joblib``. Options: ``method`` (the head's method: ``predict`` [default], ``predict_proba``,
``decision_function``; ``embed`` without a head) and ``batch_size`` (texts per forward pass, default 32).

Inference is built for a compute-bound model fed by a batching server: all the texts the batcher stacked
from the queued requests arrive in one call, are sorted by length (so a forward pass pads short texts to
their neighbours' length, not to the longest text of the call), run in micro-batches under
``torch.inference_mode()``, and are put back in order before the head runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.config import ServerConfig
from shipyard.errors import BundleError
from shipyard.handler.flavors._torch import configure_threads, is_instance_of, threads_for

__all__ = ["TextPipeline", "as_texts", "configure", "load", "longest_first", "matches", "save"]

NAME = "sentence_transformers"
# scikit-learn and joblib load the head; pinned whether or not this bundle has one (the image is the same)
PACKAGES = ("sentence-transformers", "transformers", "tokenizers", "torch", "numpy", "scikit-learn", "joblib")
ARTIFACT = "model/encoder"
HEAD = "model/head.joblib"
DEFAULT_BATCH_SIZE = 32
_HEAD_METHODS = ("predict", "predict_proba", "decision_function")


class TextPipeline:
    """A sentence-transformers encoder and an optional scikit-learn head, used as one model.

    ``fit(texts, labels)`` embeds the texts and fits the head; ``predict(texts)`` answers one prediction per
    text. ``shipyard.save`` writes it as a ``sentence_transformers`` bundle.

    >>> pipeline = TextPipeline(encoder, LogisticRegression(max_iter=1000))   # doctest: +SKIP
    >>> pipeline.fit(train_texts, train_labels).predict(["wake me up at 7"])  # doctest: +SKIP
    array(['set_alarm'], dtype='<U14')
    """

    def __init__(self, encoder: Any, head: Any = None, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if not is_sentence_transformer(encoder):
            raise BundleError(f"encoder must be a SentenceTransformer, got {type(encoder).__name__}")
        if batch_size < 1:
            raise BundleError(f"batch_size must be at least 1, got {batch_size}")
        self.encoder = encoder
        self.head = head
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str] | np.ndarray) -> np.ndarray:
        """Embeddings of ``texts`` (float32, one row per text, in order)."""
        return embed(self.encoder, as_texts(texts), self.batch_size)

    def fit(self, texts: Sequence[str] | np.ndarray, labels: Any) -> TextPipeline:
        if self.head is None:
            raise BundleError("this TextPipeline has no head to fit")
        self.head.fit(self.embed(texts), labels)
        return self

    def predict(self, texts: Sequence[str] | np.ndarray) -> Any:
        return self._head("predict", texts)

    def predict_proba(self, texts: Sequence[str] | np.ndarray) -> Any:
        return self._head("predict_proba", texts)

    def decision_function(self, texts: Sequence[str] | np.ndarray) -> Any:
        return self._head("decision_function", texts)

    def _head(self, method: str, texts: Sequence[str] | np.ndarray) -> Any:
        if self.head is None:
            raise BundleError(f"this TextPipeline has no head; {method} needs one (embed gives the embeddings)")
        return getattr(self.head, method)(self.embed(texts))


def embed(encoder: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """Encode ``texts`` longest first in micro-batches of ``batch_size``; rows come back in input order."""
    import torch

    count = len(texts)
    if count == 0:
        return np.zeros((0, encoder.get_sentence_embedding_dimension() or 0), dtype=np.float32)
    with torch.inference_mode():
        return longest_first(
            texts, batch_size, lambda chunk: encoder(encoder.preprocess(chunk))["sentence_embedding"].float().numpy()
        )


def longest_first(texts: list[str], batch_size: int, run: Callable[[list[str]], Any]) -> np.ndarray:
    """``run`` over ``texts`` (at least one) longest first, in micro-batches of ``batch_size``; its rows put back
    in input order. Character length is a good proxy for token count and costs nothing; sorting means each
    forward pass pads to the longest text of its micro-batch, not of the whole call."""
    count = len(texts)
    order = np.argsort(np.fromiter((-len(t) for t in texts), dtype=np.int64, count=count), kind="stable")
    out: np.ndarray | None = None
    for start in range(0, count, batch_size):
        rows = order[start : start + batch_size]
        part = np.asarray(run([texts[i] for i in rows]))
        if out is None:
            out = np.empty((count, *part.shape[1:]), dtype=part.dtype)
        out[rows] = part
    assert out is not None
    return out


def is_sentence_transformer(obj: Any) -> bool:
    return is_instance_of(obj, "sentence_transformers", "SentenceTransformer")


def matches(model: Any) -> bool:
    return isinstance(model, TextPipeline) or is_sentence_transformer(model)


def configure(config: ServerConfig) -> None:
    configure_threads(threads_for(config))


def save(model: Any, model_dir: Path, options: dict[str, Any]) -> str:
    head = options.pop("head", None)  # an object, not a setting: it must not reach the manifest
    if isinstance(model, TextPipeline):
        if head is not None:
            raise BundleError("pass the head inside the TextPipeline or as head=, not both")
        encoder, head = model.encoder, model.head
        options.setdefault("batch_size", model.batch_size)
    elif is_sentence_transformer(model):
        encoder = model
    else:
        raise BundleError(f"the sentence_transformers flavor needs a SentenceTransformer, got {type(model).__name__}")
    options.setdefault("batch_size", DEFAULT_BATCH_SIZE)
    method = options.setdefault("method", "embed" if head is None else "predict")
    if head is None and method != "embed":
        raise BundleError(f"method={method!r} needs a head; without one the bundle answers embeddings (method='embed')")
    if head is not None:
        if method not in _HEAD_METHODS:
            raise BundleError(f"method={method!r}: the head's method must be one of {', '.join(_HEAD_METHODS)}")
        if not callable(getattr(head, method, None)):
            raise BundleError(f"the head {type(head).__name__} has no method {method!r}")
        import joblib

        joblib.dump(head, model_dir / "head.joblib")
        options["head"] = HEAD
    encoder.save(str(model_dir / "encoder"))
    return ARTIFACT


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    from sentence_transformers import SentenceTransformer

    path = bundle_dir / (manifest.artifact or ARTIFACT)
    if not path.is_dir():
        raise BundleError(f"{path} is missing: the bundle has no sentence-transformers encoder")
    try:
        encoder = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot load the encoder in {path}: {exc}") from exc
    encoder.eval()
    head = None
    if manifest.options.get("head"):
        import joblib

        head = joblib.load(bundle_dir / str(manifest.options["head"]))
    pipeline = TextPipeline(encoder, head, batch_size=int(manifest.options.get("batch_size", DEFAULT_BATCH_SIZE)))
    method = str(manifest.options.get("method", "predict" if head is not None else "embed"))
    if method == "embed":
        return pipeline.embed
    if method not in _HEAD_METHODS:
        raise BundleError(f"method={method!r} is not one of embed, {', '.join(_HEAD_METHODS)}")
    return getattr(pipeline, method)


def as_texts(texts: Sequence[str] | np.ndarray | str) -> list[str]:
    """The texts of a batch as a list of str: one string, an array of any shape, or a sequence."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray):
        return [str(t) for t in texts.reshape(-1).tolist()]
    return [str(t) for t in texts]
