"""Shipyard: a notebook model to a SageMaker-contract endpoint.

    >>> import shipyard
    >>> bundle = shipyard.save(model, "bundle/", example=X[:5])    # doctest: +SKIP

Public API: :func:`save`, :class:`Bundle`, :func:`pack`, :func:`log_metric`, :func:`train`, :func:`deploy`, the error
tree in :mod:`shipyard.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.version import __version__

__all__ = [
    "Bundle",
    "BundleError",
    "ServerConfig",
    "ShipyardError",
    "TextPipeline",
    "__version__",
    "deploy",
    "endpoint",
    "log_metric",
    "pack",
    "save",
    "train",
]

from shipyard.errors import BundleError, ShipyardError

if TYPE_CHECKING:
    from shipyard.bundle import Bundle
    from shipyard.bundle.archive import pack
    from shipyard.config import ServerConfig
    from shipyard.handler.flavors.sentence_transformers import TextPipeline
    from shipyard.handler.save import save
    from shipyard.training.metrics import log_metric


def __getattr__(name: str) -> Any:
    # Lazy: `import shipyard` inside the image must not pull in what serving does not need.
    if name == "save":
        from shipyard.handler.save import save

        return save
    if name == "log_metric":  # a training script's metric line (docs/train.md)
        from shipyard.training.metrics import log_metric

        return log_metric
    if name == "pack":
        from shipyard.bundle.archive import pack

        return pack
    if name == "Bundle":
        from shipyard.bundle import Bundle

        return Bundle
    if name == "train":
        # shipyard.train is a package that can be called: shipyard.train("train.py", data={"train": "data/"})
        import shipyard.train

        return shipyard.train
    if name in ("deploy", "endpoint"):
        # shipyard.deploy is a package that can be called: shipyard.deploy("bundle/", name="digits")
        import shipyard.deploy

        return shipyard.deploy if name == "deploy" else shipyard.deploy.endpoint
    if name == "ServerConfig":
        from shipyard.config import ServerConfig

        return ServerConfig
    if name == "TextPipeline":
        from shipyard.handler.flavors.sentence_transformers import TextPipeline

        return TextPipeline
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
