"""Placeholder for helper A's compile package (issue 19): only the Conversion record the converters return.

A's version (MODES, compile_bundle, CONVERTERS, the check) replaces this file at merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Conversion"]


@dataclass(frozen=True)
class Conversion:
    """What a converter wrote: the onnx flavor's artifact and options, and what the check compares."""

    artifact: str
    options: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    converter: str = ""
    opset: int = 17
    methods: tuple[str, ...] = ()
    tolerance: float = 1e-5
