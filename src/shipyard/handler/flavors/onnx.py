"""ONNX models, run with onnxruntime on the CPU.

Options (``[model.options]``): ``outputs = {method: output_name}`` with ``method`` the one served (a compiled
scikit-learn classifier: ``{"predict": "label", "predict_proba": "probabilities"}``), or the older single
``output``; default the graph's first output. ``ravel = true`` flattens a regressor's ``[N, 1]`` to sklearn's
``(N,)``. ``tokenizer`` (a path in the bundle) makes it a text model: texts in, tokenized with ``tokenizers``
(see ``_onnx_text``). ``intra_op_threads`` overrides the worker's share of the cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.config import ServerConfig
from shipyard.errors import BundleError
from shipyard.handler.flavors._torch import threads_for

NAME = "onnx"
PACKAGES = ("onnxruntime", "numpy")
ARTIFACT = "model/model.onnx"
# onnxruntime's thread pools do not survive a fork: each worker's model process makes its own session
PRELOAD = False

_threads = 0  # intra-op threads for the sessions this process makes; set by configure (0: onnxruntime's choice)

_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


def matches(model: Any) -> bool:
    if type(model).__name__ == "ModelProto" and hasattr(model, "SerializeToString"):
        return True
    return isinstance(model, str | Path) and str(model).endswith(".onnx") and Path(model).is_file()


def save(model: Any, model_dir: Path, options: dict[str, Any]) -> str:
    target = model_dir / "model.onnx"
    if isinstance(model, str | Path):
        shutil.copyfile(model, target)
    elif isinstance(model, bytes):
        target.write_bytes(model)
    else:
        target.write_bytes(model.SerializeToString())
    return ARTIFACT


def configure(config: ServerConfig) -> None:
    """Size the sessions of this worker: its share of the cores, like the torch flavors (N workers × all the
    cores each is oversubscription)."""
    global _threads
    _threads = threads_for(config)


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    session = _session(bundle_dir / (manifest.artifact or ARTIFACT), manifest.options)
    if manifest.options.get("tokenizer"):
        import importlib

        text = importlib.import_module("shipyard.handler.flavors._onnx_text")  # tokenizers, for text models only
        return text.load(session, bundle_dir, manifest)
    first = session.get_inputs()[0]
    dtype = _ONNX_TYPES.get(first.type, np.float32)
    wanted = output_name(session, manifest.options)
    ravel = bool(manifest.options.get("ravel", False))

    def predict(batch: Any) -> Any:
        array = np.asarray(batch)
        if array.dtype != dtype:
            array = array.astype(dtype)
        result = session.run([wanted], {first.name: array})[0]
        return result.reshape(len(result)) if ravel and result.ndim == 2 and result.shape[1] == 1 else result

    return predict


def output_name(session: Any, options: dict[str, Any]) -> str:
    """The output the served method reads: ``outputs[method]``, else ``output``, else the first one."""
    outputs = [o.name for o in session.get_outputs()]
    by_method = options.get("outputs")
    if by_method:
        if not isinstance(by_method, dict):
            raise BundleError(f"the onnx option outputs must be a table of method = output, not {by_method!r}")
        method = options.get("method", "predict")
        if method not in by_method:
            raise BundleError(f"the ONNX model answers {sorted(by_method)}, not method {method!r}")
        wanted = by_method[method]
    else:
        wanted = options.get("output", outputs[0])
    if wanted not in outputs:
        raise BundleError(f"the ONNX model has no output {wanted!r}; it has {outputs}")
    return str(wanted)


def _session(path: Path, options: dict[str, Any]) -> Any:
    import onnxruntime as ort

    settings = ort.SessionOptions()
    threads = int(options.get("intra_op_threads", 0)) or _threads  # an explicit option wins
    if threads:
        settings.intra_op_num_threads = threads
    settings.inter_op_num_threads = 1
    settings.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise BundleError(f"onnxruntime cannot load {path}: {exc}") from exc
