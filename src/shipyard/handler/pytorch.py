"""The PyTorch container's defaults for handler scripts (what the sagemaker-pytorch-inference-toolkit does).

A script served by the PyTorch framework container may leave out any function; the toolkit's defaults are:

* ``model_fn``: ``torch.jit.load`` of ``model.pt`` in the model directory (else of its only ``.pt``/``.pth``
  file) onto the available device (CUDA when there is one, else the CPU): a TorchScript model.
* ``input_fn``: the body decoded to a numpy array, then a tensor: ``float32`` for text bodies (JSON, CSV),
  the array's own dtype for binary ones (NPY, NPZ), on the model's device.
* ``predict_fn``: ``model.eval()``, then ``model(data)`` under ``torch.no_grad()``; the output stays a tensor,
  so a script's own ``output_fn`` gets what the container would give it.
* ``output_fn``: tensors back to numpy (on the CPU), encoded in the ``Accept`` type.

Shipyard applies them when ``model_fn`` returns a ``torch.nn.Module`` (or when the script has no ``model_fn``
and the model directory holds a ``.pt``/``.pth`` file); every other model keeps the scikit-learn container's
defaults (:mod:`shipyard.handler.toolkit`). Where it is friendlier than the toolkit: the default
``predict_fn`` also takes what a script's ``input_fn`` returns as a numpy array or a list (``torch.as_tensor``,
where the toolkit calls ``data.to(device)`` and fails), it casts floating input to the model's floating
dtype (a float64 NPY body for a float32 model answers instead of raising "expected Float but found
Double"), and a sparse NPZ body is made dense (``torch.from_numpy`` of a sparse matrix fails in the toolkit).
torch is imported only here, only for such models.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.codecs.media import parse_media_type
from shipyard.codecs.npz import densify, is_sparse
from shipyard.errors import BundleError, RequestError
from shipyard.handler.flavors._torch import is_instance_of

__all__ = [
    "Placement",
    "default_model_fn",
    "default_predict",
    "is_torch_model",
    "model_file",
    "to_numpy",
    "to_tensor",
]

DEFAULT_MODEL_FILE = "model.pt"
_MODEL_SUFFIXES = (".pt", ".pth")
_TEXT_TYPES = {"application/json", "text/csv", "application/jsonlines"}


def is_torch_model(model: Any) -> bool:
    return is_instance_of(model, "torch", "Module")


@dataclass(frozen=True)
class Placement:
    """Where a model's weights are and their floating dtype (None: it has none): what the defaults move a
    request's tensor to and cast it to. Read once when the model is loaded (:meth:`of` walks its parameters),
    not on every request."""

    device: Any
    float_dtype: Any

    @classmethod
    def of(cls, model: Any) -> Placement:
        return cls(_device(model), _float_dtype(model))


def model_file(model_dir: Path) -> Path | None:
    """The file the default ``model_fn`` loads: ``model.pt``, else the directory's only ``.pt``/``.pth`` file."""
    preferred = model_dir / DEFAULT_MODEL_FILE
    if preferred.is_file():
        return preferred
    candidates = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in _MODEL_SUFFIXES)
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise BundleError(
            f"the script defines no model_fn, and {model_dir} holds several model files ({names}); the PyTorch "
            f"container's default model_fn loads exactly one: name it {DEFAULT_MODEL_FILE}, or write a model_fn"
        )
    return candidates[0] if candidates else None


def default_model_fn(model_dir: str, *, path: Path | None = None) -> Any:
    """``torch.jit.load`` of the model file onto the available device, as the PyTorch container does;
    ``path``: that file, when the caller has found it already (:func:`model_file`)."""
    path = path or model_file(Path(model_dir))
    if path is None:
        raise BundleError(f"{model_dir} has no {DEFAULT_MODEL_FILE} (or other .pt/.pth file) to load")
    try:
        import torch
    except ImportError:
        raise BundleError(f"the default model_fn loads {path.name} with torch, which is not installed") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
    except (RuntimeError, ValueError) as exc:
        raise BundleError(
            f"the default model_fn cannot load {path.name} as TorchScript ({_first_line(exc)}); save the model "
            "with torch.jit.save, or write a model_fn that builds it and loads its weights"
        ) from exc
    return model.to(device)


def to_tensor(payload: Any, content_type: str | None, model: Any, placement: Placement | None = None) -> Any:
    """The default ``input_fn``'s tensor: float32 from text bodies, the array's dtype from binary ones, on the
    model's device (``placement``'s, else read from ``model``)."""
    import torch

    if is_sparse(payload):
        payload = densify(payload)
    array = np.asarray(payload)
    if array.dtype.kind not in "biuf":
        got = "strings" if array.dtype.kind in "USO" else str(array.dtype)
        raise RequestError(f"the PyTorch container's default input_fn takes numbers, got {got}")
    media = parse_media_type(content_type)  # aliases mapped: application/jsonl is JSON Lines, application/csv CSV
    essence = media.essence if media else "application/json"
    text = essence in _TEXT_TYPES or essence.startswith("text/")
    if text:  # what torch.FloatTensor(array) gives in the toolkit
        tensor = torch.as_tensor(array, dtype=torch.float32)
    else:
        if not array.flags.writeable:  # from_numpy shares the memory, and warns on a read-only array
            array = array.copy()
        try:
            tensor = torch.from_numpy(np.ascontiguousarray(array))
        except TypeError as exc:
            raise RequestError(f"the PyTorch container's default input_fn cannot make a tensor: {exc}") from None
    return tensor.to(placement.device if placement is not None else _device(model))


def default_predict(data: Any, model: Any, placement: Placement | None = None) -> Any:
    """``model.eval()``, then ``model(data)`` under ``torch.no_grad()``, ``data`` as a tensor on the model's device
    (``placement``'s, else read from ``model``) and floating input in the model's floating dtype."""
    import torch

    placement = placement or Placement.of(model)
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    tensor = tensor.to(placement.device)
    wanted = placement.float_dtype
    if wanted is not None and tensor.is_floating_point() and tensor.dtype != wanted:
        tensor = tensor.to(wanted)
    model.eval()
    with torch.no_grad():
        return model(tensor)


def to_numpy(value: Any) -> Any:
    """Tensors (also a list, tuple or dict of them) as numpy arrays on the CPU; anything else as it is."""
    if is_instance_of(value, "torch", "Tensor"):
        return value.detach().cpu().numpy()
    # Only the first item of a sequence is looked at: a list of tensors holds tensors throughout, and a long
    # list of numbers must not cost a type check per number on every answer.
    if isinstance(value, list | tuple) and value and _holds_tensor(value[0]):
        items = [to_numpy(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # a namedtuple: by position
    if isinstance(value, dict) and any(_holds_tensor(v) for v in value.values()):
        return {k: to_numpy(v) for k, v in value.items()}
    return value


def _holds_tensor(value: Any) -> bool:
    if is_instance_of(value, "torch", "Tensor"):
        return True
    if isinstance(value, list | tuple):
        return bool(value) and _holds_tensor(value[0])
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return False


def _device(model: Any) -> Any:
    """Where the model's weights are (the CPU for a model without any)."""
    import torch

    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def _float_dtype(model: Any) -> Any:
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
