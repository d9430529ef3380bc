"""Durations as people write them (``90m``, ``2h``, ``7d``): one parser for every option that takes one; a time
as messages print it (``2026-12-06 05:00 UTC``); and the memory sizes SageMaker Serverless Inference allows (one
home: ``deploy --serverless`` checks them, ``verify --limits serverless`` runs under them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shipyard.errors import SpecError

__all__ = [
    "SERVERLESS_DEFAULT_MEMORY_MB",
    "SERVERLESS_MEMORY_MB",
    "format_duration",
    "format_utc",
    "parse_duration",
    "serverless_sizes",
]

# ProductionVariantServerlessConfig.MemorySizeInMB: 1 GB steps up to 6 GB; the SDK's ServerlessInferenceConfig
# defaults to 2048.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_DEFAULT_MEMORY_MB = 2048


def serverless_sizes() -> str:
    """The allowed sizes as an error message lists them: ``1024, 2048, 3072, 4096, 5120 or 6144``."""
    *first, last = (str(size) for size in SERVERLESS_MEMORY_MB)
    return f"{', '.join(first)} or {last}"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | timedelta, *, option: str, minimum_s: float = 0.0) -> timedelta:
    """``2h`` (s, m, h, d, w) or a timedelta; a :class:`SpecError` naming ``option`` for anything else, or for a
    duration under ``minimum_s``."""
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    else:
        match = _DURATION.match(text)
        if not match:
            raise SpecError(f"{option} {text!r}: expected a number and a unit, e.g. 90m, 2h, 7d", option=option)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < minimum_s:
        shown = f"{minimum_s:g} seconds"
        if minimum_s == 60:
            shown = "one minute"
        elif minimum_s % 60 == 0:  # whole minutes: as the flag is written (--idle 30m: at least 1h)
            shown = format_duration(int(minimum_s))
        raise SpecError(f"{option} {text!r}: at least {shown}", option=option)
    return timedelta(seconds=seconds)


def format_duration(seconds: int) -> str:
    """Whole seconds as :func:`parse_duration` reads them: ``300`` → ``5m``, ``3600`` → ``1h``, ``90`` → ``90s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_utc(stamp: datetime) -> str:
    """``stamp`` to the minute in UTC, as messages and generated files print it: ``2026-12-06 05:00 UTC``."""
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
