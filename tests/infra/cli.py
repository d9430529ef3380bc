"""The installed ``shipyard`` console script, run as a user runs it, for tests of its output and exit codes.

``shipyard(*args)`` runs it with stdout a pipe (not a terminal). ``COLUMNS`` and ``LINES`` are taken out of the
environment unless ``env`` gives them, so a width set by the shell that runs pytest cannot change a table a test
reads; ``drop`` takes out every variable with one of the given prefixes as well (e.g. ``("AWS_",)`` for a machine
without AWS configuration).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from infra.server import BIN

SHIPYARD = str(BIN / "shipyard")


def shipyard(
    *args: str,
    env: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    stdin: bytes | str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``shipyard ARGS...``: its exit code, stdout and stderr (text); ``env`` is laid over this environment."""
    unset = ("COLUMNS", "LINES")
    base = {k: v for k, v in os.environ.items() if k not in unset and not (drop and k.startswith(tuple(drop)))}
    text = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [SHIPYARD, *args], input=text, capture_output=True, text=True, env={**base, **(env or {})}, timeout=timeout,
        check=False,
    )  # fmt: skip
