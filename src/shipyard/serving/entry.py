"""``serve``: the command SageMaker runs in the container (``docker run IMAGE serve``).

Reads everything from the environment (see :mod:`shipyard.config`), the bundle from ``/opt/ml/model``.
"""

from __future__ import annotations

import logging
import sys

from shipyard.config import ServerConfig
from shipyard.errors import ShipyardError

__all__ = ["main", "serve"]


def serve(config: ServerConfig) -> int:
    """Run the server in the foreground until SIGTERM; returns the exit code."""
    from shipyard.bundle import Bundle
    from shipyard.serving.logs import setup_logging
    from shipyard.serving.supervisor import Supervisor

    setup_logging(config.log_level)
    bundle = Bundle.open(config.model_dir, config.program)  # fail fast, with a clear message, on a bad bundle
    if config.secrets:  # before the workers fork and the model loads, so both see them
        from shipyard.serving.secrets import load_secrets

        load_secrets(config)
    return Supervisor(config, bundle).run()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train":
        sys.exit("this image serves models; it has no training entry point")
    if args and args[0] not in ("serve",):
        sys.exit(f"usage: serve   (got {' '.join(args)!r}; settings come from the environment)")
    try:
        code = serve(ServerConfig.from_env())
    except (ShipyardError, OSError) as exc:
        logging.getLogger("shipyard").error("%s", exc)
        sys.exit(getattr(exc, "exit_code", 1))
    sys.exit(code)
