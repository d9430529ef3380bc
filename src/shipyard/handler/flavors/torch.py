"""PyTorch modules: TorchScript, or an eager ``nn.Module`` saved as its state dict plus its class.

* A ``torch.jit.ScriptModule`` is written with ``torch.jit.save`` (``model/model.pt``): no Python class is
  needed to load it.
* An eager ``nn.Module`` is written as ``model/weights.pt`` (``torch.save(state_dict)``, loaded back with
  ``weights_only=True``, so the weights file cannot run code) and ``model/module.pkl``: the module with its
  weights replaced by shapeless "meta" tensors, pickled with cloudpickle, so a class defined in a notebook
  travels by value and the pickle stays a few kilobytes.

The module takes one float tensor whose first axis is the batch and returns one output row per input row.
Options: ``dtype`` (input dtype, default float32), ``batch_size`` (rows per forward call; default: all).
"""

from __future__ import annotations

import copy
import site
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.config import ServerConfig
from shipyard.errors import BundleError
from shipyard.handler.flavors._torch import configure_threads, is_instance_of, threads_for

NAME = "torch"
PACKAGES = ("torch", "numpy", "cloudpickle")
SCRIPTED = "model/model.pt"
WEIGHTS = "model/weights.pt"
MODULE = "model/module.pkl"


def matches(model: Any) -> bool:
    return is_instance_of(model, "torch", "Module")


def configure(config: ServerConfig) -> None:
    configure_threads(threads_for(config))


def save(model: Any, model_dir: Path, options: dict[str, Any]) -> str:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise BundleError(f"the torch flavor needs a torch.nn.Module, got {type(model).__name__}")
    options.setdefault("dtype", "float32")
    _torch_dtype(options["dtype"])  # fail at save time, not at the first request
    if isinstance(model, torch.jit.ScriptModule):
        torch.jit.save(model, str(model_dir / "model.pt"))
        return SCRIPTED
    import cloudpickle

    state = model.state_dict()
    torch.save(state, model_dir / "weights.pt")
    # Deep-copy the module with every state-dict tensor swapped for a meta tensor of the same shape: the
    # pickle keeps the structure and the non-persistent buffers, the weights live in weights.pt only.
    memo: dict[int, Any] = {}
    for tensor in model.state_dict(keep_vars=True).values():
        meta = torch.empty_like(tensor, device="meta")
        if isinstance(tensor, torch.nn.Parameter):
            meta = torch.nn.Parameter(meta, tensor.requires_grad)
        memo[id(tensor)] = meta
    skeleton = copy.deepcopy(model, memo)
    local = _local_module(type(model).__module__)
    if local is not None:  # a class from a .py file next to the notebook: the server will not have that file
        cloudpickle.register_pickle_by_value(local)
    try:
        with (model_dir / "module.pkl").open("wb") as out:
            cloudpickle.dump(skeleton, out)
    finally:
        if local is not None:
            cloudpickle.unregister_pickle_by_value(local)
    return WEIGHTS


def _local_module(name: str) -> ModuleType | None:
    """The module defining the model's class when it is a local file rather than an installed package."""
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or name == "__main__" or path is None:
        return None  # __main__ (a notebook) already travels by value
    installed = {str(Path(p).resolve()) for p in (*site.getsitepackages(), site.getusersitepackages(), sys.prefix)}
    if any(str(Path(path).resolve()).startswith(prefix) for prefix in installed):
        return None
    return module


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    import torch

    module = load_module(bundle_dir, manifest)
    dtype = _torch_dtype(manifest.options.get("dtype", "float32"))
    batch_size = int(manifest.options.get("batch_size", 0)) or None

    def predict(batch: Any) -> Any:
        inputs = torch.as_tensor(np.asarray(batch), dtype=dtype)
        with torch.inference_mode():
            if batch_size is None or len(inputs) <= batch_size:
                return _numpy(module(inputs))
            parts = [_numpy(module(inputs[i : i + batch_size])) for i in range(0, len(inputs), batch_size)]
        return np.concatenate(parts, axis=0)

    return predict


def load_module(bundle_dir: Path, manifest: Manifest) -> Any:
    """The saved module, in eval mode (the compiler exports it; ``load`` wraps it)."""
    import torch

    artifact = manifest.artifact or WEIGHTS
    if artifact == SCRIPTED:
        module = torch.jit.load(str(bundle_dir / SCRIPTED), map_location="cpu")  # type: ignore[no-untyped-call]
    else:
        from shipyard.handler.flavors._pickle import load_pickle

        module = load_pickle(bundle_dir / MODULE)
        state = torch.load(bundle_dir / artifact, map_location="cpu", weights_only=True)
        try:
            module.load_state_dict(state, assign=True)
        except RuntimeError as exc:
            raise BundleError(f"{artifact} does not fit the saved module: {exc}") from exc
    module.eval()
    return module


def _numpy(output: Any) -> Any:
    if hasattr(output, "detach"):
        return output.detach().cpu().numpy()
    raise BundleError(f"the module returned {type(output).__name__}; the torch flavor expects one tensor")


def _torch_dtype(name: str) -> Any:
    import torch

    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise BundleError(f"dtype={name!r} is not a torch dtype (e.g. float32, int64)")
    return dtype
