"""`shipyard train` (filled in by the issue 14 work)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the command(s) to ``app``."""
