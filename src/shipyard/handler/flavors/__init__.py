"""Model flavors: how one kind of model is saved into a bundle and loaded back as a batch predictor.

Each flavor module exposes ``NAME``, ``matches(model)``, ``save(model, model_dir, options)`` and
``load(bundle_dir, manifest)``. Modules are imported only when used, so a scikit-learn image never
imports onnxruntime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError

__all__ = ["FLAVORS", "Flavor", "detect", "flavor_module"]

# Most specific first: detection stops at the first match (a SentenceTransformer is also a torch Module).
FLAVORS = ("sentence_transformers", "torch", "sklearn", "onnx", "python")

Predictor = Callable[[Any], Any]


class Flavor(Protocol):
    NAME: str
    PACKAGES: tuple[str, ...]

    def matches(self, model: Any) -> bool: ...

    def save(self, model: Any, model_dir: Path, options: dict[str, Any]) -> str: ...

    def load(self, bundle_dir: Path, manifest: Manifest) -> Predictor: ...


def flavor_module(name: str) -> ModuleType:
    if name not in FLAVORS:
        raise BundleError(f"unknown flavor {name!r}; known flavors: {', '.join(FLAVORS)}")
    return importlib.import_module(f"shipyard.handler.flavors.{name}")


def detect(model: Any) -> str:
    for name in FLAVORS:
        try:
            module = flavor_module(name)
        except ImportError:
            continue
        if module.matches(model):
            return name
    raise BundleError(
        f"cannot tell how to save a {type(model).__module__}.{type(model).__qualname__}: "
        f"pass flavor= one of {', '.join(FLAVORS)}, or write a code/inference.py handler"
    )
