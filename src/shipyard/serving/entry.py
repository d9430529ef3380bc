"""Run the server in this process: the bundle, the secrets, the supervisor and its workers.

The image's ``serve`` command is :func:`shipyard.hosting.main`, which reads the settings and hands in the AWS
parts (a :data:`~shipyard.serving.secrets.SecretSource`, an :class:`~shipyard.serving.capture.ObjectStore`);
this module never imports them, so the server runs without boto3 where neither is configured.
"""

from __future__ import annotations

from shipyard.config import ServerConfig
from shipyard.errors import SettingsError
from shipyard.serving.capture import ObjectStore
from shipyard.serving.secrets import SecretSource

__all__ = ["serve"]


def serve(config: ServerConfig, *, secrets: SecretSource | None = None, store: ObjectStore | None = None) -> int:
    """Run the server in the foreground until SIGTERM; returns the exit code. ``secrets`` reads the values of
    ``config.secrets``; ``store`` takes an ``s3://`` capture."""
    from shipyard.bundle import Bundle
    from shipyard.serving.logs import setup_logging
    from shipyard.serving.supervisor import Supervisor

    setup_logging(config.log_level)
    # fail fast, with a clear message, on a bad bundle; a multi-model server starts with none
    bundle = None if config.multi_model else Bundle.open(config.model_dir, config.program)
    if config.secrets:  # before the workers fork and the model loads, so both see them
        if secrets is None:
            raise SettingsError("SHIPYARD_SECRETS is set but nothing here can read secrets")
        from shipyard.serving.secrets import load_secrets

        load_secrets(config, secrets)
    return Supervisor(config, bundle, store=store).run()
