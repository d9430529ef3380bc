"""From a bundle to the handler the server drives (see :mod:`shipyard.handler.base`)."""

from __future__ import annotations

from shipyard.bundle import HANDLER_FLAVOR, Bundle
from shipyard.config import ServerConfig
from shipyard.handler.base import Handler, Prepared, split, stack

__all__ = ["Handler", "Prepared", "handler_for", "split", "stack"]


def handler_for(bundle: Bundle, config: ServerConfig) -> Handler:
    """The handler of ``bundle``: its ``code/inference.py`` when it has one, else its flavor's."""
    if bundle.flavor == HANDLER_FLAVOR or bundle.handler_script is not None:
        from shipyard.handler.toolkit import ToolkitHandler

        return ToolkitHandler(bundle, config)
    from shipyard.handler.model import ModelHandler

    return ModelHandler(bundle, config)
