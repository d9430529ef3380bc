"""Secrets for the handler, read once at start with the endpoint's own role (``SHIPYARD_SECRETS``).

``shipyard deploy --secret NAME`` (or ``--secret VAR=NAME``) puts only the *names* into the model's
environment; the server reads each value from AWS Secrets Manager here, in the main process before any
worker starts and before the model loads, and puts it in ``os.environ[VAR]`` for the handler. Values are
never written to the image, the bundle, the state file or a log line; the log names the variables only.

boto3 is imported only when secrets are asked for, so images without secrets do not need it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import MutableMapping

from shipyard.config import ServerConfig
from shipyard.errors import ShipyardError

__all__ = ["load_secrets", "parse_entry"]

log = logging.getLogger("shipyard.secrets")


def parse_entry(entry: str) -> tuple[str, str]:
    """``VAR=NAME`` → (VAR, NAME); a bare ``NAME`` → (NAME in upper case with ``_`` for other signs, NAME)."""
    var, sep, name = entry.partition("=")
    if not sep:
        var, name = re.sub(r"[^A-Za-z0-9_]", "_", entry).upper(), entry
    return var.strip(), name.strip()


def load_secrets(config: ServerConfig, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Fetch every secret of ``config.secrets`` into ``environ`` (default ``os.environ``); the variables set."""
    if not config.secrets:
        return []
    environ = os.environ if environ is None else environ
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ShipyardError(
            "SHIPYARD_SECRETS is set but boto3 is not in this image: build it with the aws extra "
            "(`shipyard build` adds it when the deployment has secrets)"
        ) from None
    client = boto3.client("secretsmanager", region_name=config.region)
    names = []
    for entry in config.secrets:
        var, name = parse_entry(entry)
        try:
            answer = client.get_secret_value(SecretId=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            raise ShipyardError(
                f"cannot read the secret {name!r} ({code}): the endpoint's role needs "
                "secretsmanager:GetSecretValue on it, and the secret must exist in this region"
            ) from None
        except BotoCoreError as exc:
            raise ShipyardError(f"cannot read the secret {name!r}: {type(exc).__name__}") from None
        if "SecretString" in answer:
            environ[var] = answer["SecretString"]
        else:
            environ[var] = base64.b64encode(answer["SecretBinary"]).decode()
        names.append(var)
    log.info("secrets loaded", extra={"fields": {"variables": names}})
    return names
