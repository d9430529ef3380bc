"""ONNX models, run with onnxruntime on the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError

NAME = "onnx"
PACKAGES = ("onnxruntime", "numpy")
ARTIFACT = "model/model.onnx"

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


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = int(manifest.options.get("intra_op_threads", 0))
    if threads:
        options.intra_op_num_threads = threads
    path = bundle_dir / (manifest.artifact or ARTIFACT)
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise BundleError(f"onnxruntime cannot load {path}: {exc}") from exc
    first = session.get_inputs()[0]
    dtype = _ONNX_TYPES.get(first.type, np.float32)
    outputs = [o.name for o in session.get_outputs()]
    wanted = manifest.options.get("output", outputs[0])
    if wanted not in outputs:
        raise BundleError(f"the ONNX model has no output {wanted!r}; it has {outputs}")

    def predict(batch: Any) -> Any:
        array = np.asarray(batch)
        if array.dtype != dtype:
            array = array.astype(dtype)
        return session.run([wanted], {first.name: array})[0]

    return predict
