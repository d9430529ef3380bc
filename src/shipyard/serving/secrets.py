"""Secrets for the handler, read once at start with the endpoint's own role (``SHIPYARD_SECRETS``).

``shipyard deploy --secret NAME`` (or ``--secret VAR=NAME``) puts only the *names* into the model's
environment; the server reads each value from AWS Secrets Manager here, in the main process before any
worker starts and before the model loads, and puts it in ``os.environ[VAR]`` for the handler. Values are
never written to the image, the bundle, the state file or a log line; the log names the variables only.

The values come from a :data:`SecretSource` the entry point hands in (``shipyard.hosting`` passes
:class:`shipyard.cloud.secrets.SecretReader`): the server itself never imports boto3.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Callable, MutableMapping

from shipyard.config import ServerConfig

__all__ = ["SecretSource", "load_secrets", "parse_entry"]

# A secret's name → its value: the text, or the bytes of a binary secret. It raises a ShipyardError (a
# CloudError where AWS refuses) that says which secret could not be read and why.
SecretSource = Callable[[str], "str | bytes"]

log = logging.getLogger("shipyard.secrets")


def parse_entry(entry: str) -> tuple[str, str]:
    """``VAR=NAME`` → (VAR, NAME); a bare ``NAME`` → (NAME in upper case with ``_`` for other signs, NAME)."""
    var, sep, name = entry.partition("=")
    if not sep:
        var, name = re.sub(r"[^A-Za-z0-9_]", "_", entry).upper(), entry
    return var.strip(), name.strip()


def load_secrets(
    config: ServerConfig, source: SecretSource, environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Fetch every secret of ``config.secrets`` from ``source`` into ``environ`` (default ``os.environ``);
    the variables set. A binary secret becomes its base64 text."""
    if not config.secrets:
        return []
    environ = os.environ if environ is None else environ
    names = []
    for entry in config.secrets:
        var, name = parse_entry(entry)
        value = source(name)
        environ[var] = value if isinstance(value, str) else base64.b64encode(value).decode()
        names.append(var)
    log.info("secrets loaded", extra={"fields": {"variables": names}})
    return names
