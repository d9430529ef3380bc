"""A plain Python callable that takes a batch of rows and returns one prediction per row.

Saved with cloudpickle, so functions and lambdas defined in a notebook travel by value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError

NAME = "python"
PACKAGES = ("cloudpickle", "numpy")
PRELOAD = True  # loading starts no threads: the supervisor may load it once, before forking
ARTIFACT = "model/model.pkl"


def matches(model: Any) -> bool:
    return callable(model)


def save(model: Any, model_dir: Path, options: dict[str, Any]) -> str:
    import cloudpickle

    if not callable(model):
        raise BundleError(f"the python flavor needs a callable, got {type(model).__name__}")
    with (model_dir / "model.pkl").open("wb") as out:
        cloudpickle.dump(model, out)
    return ARTIFACT


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    from shipyard.handler.flavors._pickle import load_pickle

    function = load_pickle(bundle_dir / (manifest.artifact or ARTIFACT))
    if not callable(function):
        raise BundleError("the pickled model is not callable")
    return function
