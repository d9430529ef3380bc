"""Metrics in the log: ``log_metric`` writes one line, :class:`MetricParser` reads it (and the user's regexes) back.

The one line format, inside the image and on the host alike::

    [metric] NAME=VALUE            or     [metric] NAME=VALUE step=STEP

``VALUE`` is ``repr(float(value))``. A ``--metric NAME`` without a regex gets :func:`default_regex`, which matches
that line, so SageMaker's ``MetricDefinitions`` read the same lines the local target does.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["METRIC_LINE", "MetricParser", "MetricPoint", "default_regex", "log_metric"]

PREFIX = "[metric] "
# Any `[metric]` line, whatever its name: NAME has no '=' and no whitespace.
METRIC_LINE = re.compile(r"\[metric\] (?P<name>[^=\s]+)=(?P<value>\S+)(?: step=(?P<step>-?\d+))?")


@dataclass(frozen=True)
class MetricPoint:
    """One value of one metric: from ``shipyard.log_metric`` or a ``--metric NAME=REGEX`` match in the log."""

    name: str
    value: float
    step: int | None = None
    timestamp: float = 0.0  # seconds since the epoch, when the line was read


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Print ``[metric] NAME=VALUE [step=STEP]`` on stdout (flushed): the local target records it as it is read,
    and on SageMaker the metric definitions Shipyard sends match it."""
    if not name or "=" in name or any(c.isspace() for c in name):
        raise ValueError(f"metric name {name!r}: no '=' and no whitespace")
    line = f"{PREFIX}{name}={float(value)!r}"
    if step is not None:
        line += f" step={int(step)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def default_regex(name: str) -> str:
    """The regex of ``--metric NAME`` given without one: it matches :func:`log_metric`'s line for NAME."""
    return r"\[metric\] " + re.escape(name) + r"=([-+0-9.eE]+|nan|inf)"


class MetricParser:
    """Reads metric values out of log lines: every ``[metric]`` line, and each user regex of ``definitions``
    (name → regex; None: :func:`default_regex`, already covered by the ``[metric]`` lines)."""

    def __init__(self, definitions: Mapping[str, str | None] | None = None) -> None:
        self.regexes = {name: re.compile(regex) for name, regex in (definitions or {}).items() if regex is not None}

    def feed(self, line: str) -> list[MetricPoint]:
        """The points in ``line``, in order: its ``[metric]`` value, then each user regex's match. A value that
        is not a number is skipped."""
        now = time.time()
        points: list[MetricPoint] = []
        seen: set[str] = set()
        match = METRIC_LINE.search(line)
        if match:
            value = _number(match.group("value"))
            if value is not None:
                step = match.group("step")
                points.append(MetricPoint(match.group("name"), value, int(step) if step else None, now))
                seen.add(match.group("name"))
        for name, regex in self.regexes.items():
            found = regex.search(line)
            if found is None or name in seen:
                continue
            value = _number(found.group(1))
            if value is not None:
                points.append(MetricPoint(name, value, None, now))
        return points


def _number(text: str | None) -> float | None:
    try:
        return float(text or "")
    except ValueError:
        return None
