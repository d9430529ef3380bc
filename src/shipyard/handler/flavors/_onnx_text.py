"""Compiled text models: texts → ``tokenizers`` → an onnxruntime session (no torch, transformers or sklearn).

The onnx flavor hands its session here when the bundle's options name a ``tokenizer`` (written by
``shipyard.handler.compile.text``). Tokenization reproduces what sentence-transformers does per call and
what ``tokenizer.json`` does not say: truncation at ``max_seq_length`` (the file itself says 128) and padding
to the longest text of the batch (the file says a fixed 128). Like the native flavor, texts are sorted by
length and run in micro-batches of ``batch_size``, so short texts are not padded to a long neighbour's length,
and the rows are put back in order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.flavors.sentence_transformers import as_texts, longest_first  # imports no torch

__all__ = ["load", "tokenizer_for"]

_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def tokenizer_for(bundle_dir: Path, options: dict[str, Any]) -> Any:
    """The bundle's ``tokenizers.Tokenizer``, truncating and padding as sentence-transformers does."""
    # One worker uses its share of the cores (the session's threads), not the tokenizer's pool of every core
    # on top of it; also no warning when the supervisor forks.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    path = bundle_dir / str(options["tokenizer"])
    if not path.is_file():
        raise BundleError(f"{path} is missing: the compiled text model has no tokenizer")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=int(options.get("max_seq_length", 512)))
    tokenizer.enable_padding(pad_id=int(options.get("pad_id", 0)), pad_token=str(options.get("pad_token", "[PAD]")))
    return tokenizer


def load(session: Any, bundle_dir: Path, manifest: Manifest) -> Any:
    """``predict(texts)`` over ``session``: one output row per text, from the output of ``options.method``."""
    options = manifest.options
    tokenizer = tokenizer_for(bundle_dir, options)
    inputs = [str(n) for n in options.get("inputs", ("input_ids", "attention_mask"))]
    unknown = [n for n in inputs if n not in _FIELDS]
    graph_inputs = {i.name for i in session.get_inputs()}
    if unknown or set(inputs) != graph_inputs:
        raise BundleError(f"options.inputs {inputs} do not match the graph's inputs {sorted(graph_inputs)}")
    method = str(options.get("method", "predict"))
    outputs = dict(options.get("outputs", {}))
    output = str(outputs.get(method, options.get("output", "")))
    names = [o.name for o in session.get_outputs()]
    if output not in names:
        raise BundleError(f"method={method!r}: the ONNX model has no output {output!r}; it has {names}")
    batch_size = max(1, int(options.get("batch_size", 32)))
    label_dtype = options.get("label_dtype") if method == "predict" else None
    cast = np.dtype(str(label_dtype)) if label_dtype else None

    def run(texts: list[str]) -> Any:
        encodings = tokenizer.encode_batch(texts)
        feed = {n: np.asarray([getattr(e, _FIELDS[n]) for e in encodings], dtype=np.int64) for n in inputs}
        return session.run([output], feed)[0]

    def predict(batch: Any) -> Any:
        texts = as_texts(batch)
        count = len(texts)
        if count == 0:
            return run([""])[:0]  # the right dtype and trailing shape, no rows
        out = longest_first(texts, batch_size, run)  # the native flavor's micro-batches, in the same order
        return out.astype(cast) if cast is not None else out

    return predict
