"""scikit-learn estimators and pipelines, saved with joblib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError

NAME = "sklearn"
PACKAGES = ("scikit-learn", "joblib", "numpy", "scipy", "threadpoolctl")
PRELOAD = True  # loading starts no threads: the supervisor may load it once, before forking
ARTIFACT = "model/model.joblib"


def matches(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def save(model: Any, model_dir: Path, options: dict[str, Any]) -> str:
    import joblib

    method = options.setdefault("method", "predict")
    if not callable(getattr(model, method, None)):
        raise BundleError(f"{type(model).__name__} has no method {method!r}")
    joblib.dump(model, model_dir / "model.joblib")
    return ARTIFACT


def load(bundle_dir: Path, manifest: Manifest) -> Any:
    import joblib

    model = joblib.load(bundle_dir / (manifest.artifact or ARTIFACT))
    method = manifest.options.get("method", "predict")
    predict = getattr(model, method, None)
    if predict is None:
        raise BundleError(f"the saved {type(model).__name__} has no method {method!r}")
    schema = manifest.input
    if schema.kind == "tensor" and schema.dtype.startswith("float") and not schema.allow_nan:
        # The schema has already refused NaN and infinities before any request reaches the model, so
        # scikit-learn's own finiteness scan (most of a small model's predict time) is redundant.
        from sklearn import config_context

        def predict_checked(batch: Any) -> Any:
            with config_context(assume_finite=True):
                return predict(batch)

        return predict_checked
    return predict
