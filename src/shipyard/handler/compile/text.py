"""sentence-transformers encoders (+ a scikit-learn head) → one ONNX graph, tokenized by the ``tokenizers`` library.

The graph holds the transformer, mean pooling and (when the encoder has it) L2 normalisation; a head is
converted by skl2onnx and merged behind it, so one session answers ``label`` and ``probabilities``. The served
form needs onnxruntime, numpy and tokenizers: no torch, transformers or scikit-learn
(``shipyard.handler.flavors._onnx_text`` tokenizes and runs it).

Only the common layout is compiled: Transformer, mean Pooling, optional Normalize, no default prompt, no
lower-casing done outside the tokenizer. Anything else raises with the reason (``compile="auto"`` keeps the
native flavor and records it).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.compile import Conversion
from shipyard.handler.flavors.sentence_transformers import as_texts

__all__ = ["EDGE_TEXTS", "convert", "generate"]

OPSET = 17
ARTIFACT = "model/model.onnx"
TOKENIZER = "model/tokenizer.json"
PACKAGES = ("onnxruntime", "numpy", "tokenizers")
TOLERANCE = 1e-5  # float32 graph vs torch: 3.1e-7 measured on the intent texts
EMBEDDING = "sentence_embedding"
# Texts that break naive tokenization: empty, blank, accents / symbols / CJK.
# check texts generated when the caller names no count: each costs the native encoder 5–50 ms
CHECK_ROWS = 64
EDGE_TEXTS = ("", "   ", "café ünïcödé ☃ 東京")
_MAX_WORDS = 400  # past max_seq_length (256 tokens for MiniLM): the truncation path is compared too


def convert(model: Any, bundle_dir: Path, manifest: Manifest) -> Conversion:
    """Export the encoder (and head) of a ``sentence_transformers`` bundle to ``model/model.onnx``."""
    import torch

    encoder, head = _parts(model, bundle_dir, manifest)
    _check_layout(encoder)
    method = str(manifest.options.get("method", "predict" if head is not None else "embed"))
    tokenizer = encoder.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise BundleError(
            f"the tokenizer's inputs are {tokenizer.model_input_names}; input_ids and attention_mask needed"
        )
    if tokenizer.pad_token is None or tokenizer.pad_token_id is None:
        raise BundleError("the tokenizer has no pad token: batches of texts cannot be padded")
    model_dir = bundle_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(encoder, bundle_dir)

    normalize = any(type(m).__name__ == "Normalize" for m in encoder)
    wrapper = _encoder_class()(encoder[0].auto_model, normalize, "token_type_ids" in names).eval()
    # A padded batch of two lengths, so the attention-mask path is what the tracer records.
    features = encoder.preprocess(["a short text", "a somewhat longer text, so that the first one is padded"])
    sample = tuple(features[n] for n in names)
    path = bundle_dir / ARTIFACT
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and transformers' tracer warnings
        torch.onnx.export(
            wrapper,
            sample,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=[EMBEDDING],
            opset_version=OPSET,
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, EMBEDDING: {0: "batch"}},
        )
    outputs: dict[str, str] = {"embed": EMBEDDING}
    methods: tuple[str, ...] = ("embed",)
    converter = f"torch.onnx {torch.__version__.split('+')[0]}"
    if head is not None:
        outputs, methods = _merge_head(path, head, _dimension(encoder), method)
        import skl2onnx

        converter += f" + skl2onnx {skl2onnx.__version__}"
    elif method != "embed":
        raise BundleError(f"method={method!r} needs a head; this encoder has none")
    options = {
        "tokenizer": TOKENIZER,
        "max_seq_length": _max_seq_length(encoder),
        "pad_id": int(tokenizer.pad_token_id),
        "pad_token": str(tokenizer.pad_token),
        "batch_size": int(manifest.options.get("batch_size", 32)),
        "inputs": names,
        "outputs": outputs,
        "method": method,
    }
    classes = np.asarray(getattr(head, "classes_", []))
    if method == "predict" and classes.dtype.kind in "bfU":  # the graph's labels are int64 or generic strings
        options["label_dtype"] = str(classes.dtype)
    return Conversion(
        artifact=ARTIFACT,
        options=options,
        packages=PACKAGES,
        files=(ARTIFACT, TOKENIZER),
        converter=converter,
        opset=OPSET,
        methods=methods,
        tolerance=TOLERANCE,
    )


def _max_seq_length(encoder: Any) -> int:
    """Where the encoder truncates: the served tokenizer must truncate at the same length."""
    length = getattr(encoder, "max_seq_length", None)
    if not isinstance(length, int) or length < 1:
        raise BundleError(
            f"the encoder states no max_seq_length ({length!r}); set encoder.max_seq_length before compiling"
        )
    return length


def generate(manifest: Manifest, example: Any, held_out: Any, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` check texts: the edge texts, then word samples of the example and held-out texts, 1…400 words."""
    words = [w for text in (*_texts_or_none(example), *_texts_or_none(held_out)) for w in text.split()] or ["text"]
    edge = list(EDGE_TEXTS)[: max(0, count)]
    wanted = max(0, count - len(edge))
    # One text of each extreme, the rest log-uniform in between: most as short as real requests, some past the
    # truncation. (A long text costs the native encoder ~50× a short one; uniform lengths made the check slow.)
    spread = np.exp(rng.uniform(0.0, np.log(_MAX_WORDS), size=max(0, wanted - 2)))
    lengths = [1, _MAX_WORDS][:wanted] + np.clip(np.rint(spread), 1, _MAX_WORDS).astype(int).tolist()
    picks = [" ".join(words[i] for i in rng.integers(0, len(words), size=n)) for n in lengths]
    return edge + picks


def _encoder_class() -> Any:
    """The export wrapper's class, defined on first use: this module must import without torch."""
    import torch

    class Encoder(torch.nn.Module):
        """Transformer + mean pooling (+ L2 normalise), all in the graph: the flavor only tokenizes."""

        def __init__(self, bert: Any, normalize: bool, types: bool) -> None:
            super().__init__()
            self.bert, self.normalize, self.types = bert, normalize, types

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {"token_type_ids": token_type_ids} if self.types else {}
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            embedding = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(embedding, p=2, dim=1) if self.normalize else embedding

    return Encoder


def _parts(model: Any, bundle_dir: Path, manifest: Manifest) -> tuple[Any, Any]:
    """(encoder, head) from the live object, or from the bundle's ``model/encoder`` and ``model/head.joblib``."""
    from shipyard.handler.flavors import sentence_transformers as flavor

    if isinstance(model, flavor.TextPipeline):
        return model.encoder, model.head
    head = None
    if manifest.options.get("head") and (bundle_dir / str(manifest.options["head"])).is_file():
        import joblib

        head = joblib.load(bundle_dir / str(manifest.options["head"]))
    if model is not None and flavor.is_sentence_transformer(model):
        return model, head
    if model is not None:
        raise BundleError(f"the text converter needs a TextPipeline or SentenceTransformer, got {type(model).__name__}")
    from sentence_transformers import SentenceTransformer

    path = bundle_dir / (manifest.artifact or flavor.ARTIFACT)
    if not path.is_dir():
        raise BundleError(f"{path} is missing: the bundle has no sentence-transformers encoder")
    encoder = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return encoder.eval(), head


def _check_layout(encoder: Any) -> None:
    """Refuse what the graph would compute differently from ``SentenceTransformer.encode``."""
    kinds = [type(m).__name__ for m in encoder]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise BundleError(
            f"the encoder's modules are {', '.join(kinds)}; only Transformer, Pooling (+ Normalize) are compiled"
        )
    mode = _pooling_mode(encoder[1])
    if mode != "mean":
        raise BundleError(f"the encoder pools with {mode!r}; only mean pooling is compiled")
    if getattr(encoder, "default_prompt_name", None):
        raise BundleError(f"the encoder prepends the prompt {encoder.default_prompt_name!r}; prompts are not compiled")
    if getattr(encoder[0], "do_lower_case", False):
        raise BundleError("the encoder lower-cases texts before its tokenizer (do_lower_case); not compiled")
    if not hasattr(encoder[0], "auto_model"):
        raise BundleError("the encoder's Transformer module has no auto_model to export")


def _pooling_mode(pooling: Any) -> str:
    config = pooling.get_config_dict()
    if "pooling_mode" in config:  # sentence-transformers ≥ 6
        return str(config["pooling_mode"])
    on = [
        k.removeprefix("pooling_mode_").removesuffix("_tokens")
        for k, v in config.items()
        if k.startswith("pooling_mode_") and v
    ]
    return "+".join(on) or "none"


def _copy_tokenizer(encoder: Any, bundle_dir: Path) -> None:
    """``model/tokenizer.json``: the saved encoder's file, else the live tokenizer's (same content)."""
    target = bundle_dir / TOKENIZER
    saved = bundle_dir / "model" / "encoder" / "tokenizer.json"
    if saved.is_file():
        shutil.copyfile(saved, target)
        return
    backend = getattr(encoder.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BundleError(
            "the encoder's tokenizer is not a fast (tokenizers) tokenizer; it cannot be served without transformers"
        )
    backend.save(str(target))


def _merge_head(path: Path, head: Any, dimension: int | None, method: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Convert ``head`` with skl2onnx and merge it behind the encoder graph in ``path`` (rewritten in place)."""
    try:
        import onnx
        import onnx.compose
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise BundleError(f"skl2onnx is not installed (pip install 'shipyard[compile]'): {exc}") from exc
    if not dimension:
        raise BundleError("the encoder does not state its embedding dimension")
    classifier = callable(getattr(head, "predict_proba", None))
    converted = to_onnx(
        head,
        initial_types=[("X", FloatTensorType([None, dimension]))],
        target_opset={"": OPSET, "ai.onnx.ml": 3},
        options={id(head): {"zipmap": False}} if classifier else None,
    )
    head_outputs = [o.name for o in converted.graph.output]
    if classifier and head_outputs[:2] == ["label", "probabilities"]:
        outputs = {"predict": "label", "predict_proba": "probabilities"}
    elif not classifier and len(head_outputs) == 1:
        outputs = {"predict": head_outputs[0]}
    else:
        raise BundleError(f"the converted head answers {head_outputs}; expected label and probabilities")
    if method not in outputs:
        raise BundleError(f"method={method!r} is not compiled for the head; {', '.join(outputs)} are")
    encoder_model = onnx.load(str(path))
    ir = min(encoder_model.ir_version, converted.ir_version)
    encoder_model.ir_version = converted.ir_version = ir
    merged = onnx.compose.merge_models(encoder_model, converted, io_map=[(EMBEDDING, "X")])
    onnx.save(merged, str(path))
    methods = (method, *(m for m in ("predict", "predict_proba") if m in outputs and m != method))
    return outputs, methods


def _dimension(encoder: Any) -> int | None:
    """The embedding width (sentence-transformers 6 renamed the method; older ones have only the old name)."""
    method = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    value = method()
    return int(value) if value else None


def _texts_or_none(texts: Any) -> list[str]:
    return [] if texts is None else as_texts(texts)
