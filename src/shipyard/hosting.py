"""``serve``: the command SageMaker runs in the container (``docker run IMAGE serve``), and ``shipyard serve``.

The composition root of the image: reads the settings (:class:`~shipyard.config.ServerConfig`, all from the
environment, the bundle from ``/opt/ml/model``), wires the server with its AWS parts and runs it. The AWS
parts (:mod:`shipyard.cloud`, boto3) are imported only when ``SHIPYARD_SECRETS`` or an ``s3://`` capture
destination asks for them: images without either carry no boto3.
"""

from __future__ import annotations

import logging
import sys

from shipyard.config import ServerConfig
from shipyard.errors import CloudError, SettingsError, ShipyardError
from shipyard.serving.capture import ObjectStore
from shipyard.serving.secrets import SecretSource

__all__ = ["main", "serve"]

NO_BOTO3 = (
    "SHIPYARD_SECRETS is set but boto3 is not in this image: build it with the aws extra "
    "(`shipyard build` adds it when the deployment has secrets)"
)


def secret_source(config: ServerConfig) -> SecretSource | None:
    """Secrets Manager, read with the endpoint's role, when ``SHIPYARD_SECRETS`` names any secret."""
    if not config.secrets:
        return None
    try:
        from shipyard.cloud.secrets import SecretReader
        from shipyard.cloud.session import Aws
    except (ImportError, CloudError):  # cloud/__init__ raises CloudError without boto3
        raise SettingsError(NO_BOTO3) from None
    return SecretReader(Aws(config.region))


def object_store(config: ServerConfig) -> ObjectStore | None:
    """S3, when the capture destination is ``s3://`` (the client is made in the worker, on first use)."""
    if not (config.capture_destination or "").startswith("s3://"):
        return None
    try:
        from shipyard.cloud.s3 import CaptureStore
    except (ImportError, CloudError):
        return None  # the S3 sink says at its first flush that capturing to s3:// needs boto3
    return CaptureStore(config.region)


def serve(config: ServerConfig) -> int:
    """Run the server, wired with what its settings ask for, in the foreground until SIGTERM; the exit code."""
    from shipyard.serving import entry

    return entry.serve(config, secrets=secret_source(config), store=object_store(config))


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


if __name__ == "__main__":
    main()
