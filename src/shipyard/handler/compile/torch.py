"""PyTorch modules (eager or TorchScript) → ONNX with ``torch.onnx.export``'s tracer, served by onnxruntime.

The tracer records the operations one input took: Python control flow that depends on the data is baked in
(only the equivalence check on generated rows catches that), and a forward that leaves torch (numpy in the
middle) is exported with its input folded into constants — refused here, since the graph would answer the
same thing for every row.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.compile import Conversion

__all__ = ["convert"]

OPSET = 17
ARTIFACT = "model/model.onnx"
PACKAGES = ("onnxruntime", "numpy")
TOLERANCE = 1e-5  # float32 graph vs eager torch: 2.4e-7 measured on an MLP
INPUT, OUTPUT = "input", "output"
_TRACE_ROWS = 8


def convert(model: Any, bundle_dir: Path, manifest: Manifest) -> Conversion:
    """Export the bundle's module to ``model/model.onnx`` with a dynamic batch axis."""
    import torch

    from shipyard.handler.flavors import torch as flavor

    if model is None:
        model = flavor.load_module(bundle_dir, manifest)
    elif not isinstance(model, torch.nn.Module):
        raise BundleError(f"the torch converter needs a torch.nn.Module, got {type(model).__name__}")
    dtype = flavor._torch_dtype(manifest.options.get("dtype", "float32"))
    sample = torch.as_tensor(np.asarray(_trace_rows(bundle_dir, manifest)), dtype=dtype)
    path = bundle_dir / ARTIFACT
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                dynamo=False,
                input_names=[INPUT],
                output_names=[OUTPUT],
                opset_version=OPSET,
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            )
    finally:
        model.train(was_training)
    _check_inputs(path)
    return Conversion(
        artifact=ARTIFACT,
        options={"outputs": {"predict": OUTPUT}, "method": "predict"},
        packages=PACKAGES,
        files=(ARTIFACT,),
        converter=f"torch.onnx {torch.__version__.split('+')[0]}",
        opset=OPSET,
        methods=("predict",),
        tolerance=TOLERANCE,
    )


def _trace_rows(bundle_dir: Path, manifest: Manifest) -> Any:
    """The example's first rows (``example.json``), else zeros in the input schema's shape."""
    example = bundle_dir / "example.json"
    if example.is_file():
        rows = json.loads(example.read_text()).get("instances")
        if rows:
            return rows[:_TRACE_ROWS]
    shape = manifest.input.shape
    if manifest.input.kind != "tensor" or any(d < 0 for d in shape[1:]):
        raise BundleError("the bundle has no example to trace the module with (save it with example=…)")
    return np.zeros((2, *shape[1:]))


def _check_inputs(path: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if names != [INPUT]:
        raise BundleError(
            f"the exported graph lost its input (it has {names or 'none'}): the forward leaves torch "
            "(numpy or Python math on the values), so the tracer folded the input into constants"
        )
