"""The values a captured answer (or a ground-truth record) holds: one entry per row the model answered.

    decode_values('{"predictions": [0, 1, 1]}', "JSON")      # [0, 1, 1]
    decode_values("0.2\\n0.9\\n", "CSV")                      # [0.2, 0.9]
    answer_rows(data, encodings, content_types)               # 3, 2, … per record (-1: unreadable)

Answers are ``{"predictions": […]}`` (this server, TF Serving, SageMaker's JSON), ``{"outputs": …}``, a bare
JSON list, JSON Lines (one line per row) or CSV (one line per row; a line of several cells is one row's
scores). The quality check joins these values with labels; the drift check uses their number to decide how
many rows an ambiguous request held (see :mod:`payloads`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

__all__ = ["answer_rows", "decode_values"]

_KEYS = ("predictions", "outputs", "labels", "label", "prediction")


def decode_values(data: Any, encoding: str, content_type: str = "") -> list[Any] | None:
    """The values a payload holds (predictions from an answer, or labels); ``None`` when it cannot be read."""
    if data is None:
        return None
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        encoding = "CSV" if "csv" in content_type else "JSON"
    if not isinstance(data, str):
        return _values(data)
    if encoding == "CSV":
        rows = [line for line in data.splitlines() if line.strip()]
        out: list[Any] = []
        for row in rows:
            cells = [_cell(c) for c in row.split(",")]
            out.append(cells[0] if len(cells) == 1 else cells)
        return out
    if "jsonl" in content_type or "ndjson" in content_type:
        try:
            return [orjson.loads(line) for line in data.splitlines() if line.strip()]
        except orjson.JSONDecodeError:
            return None
    try:
        return _values(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None


def answer_rows(data: pa.Array, encodings: pa.Array, content_types: pa.Array) -> np.ndarray:
    """How many rows each captured answer holds (``-1`` where there is none, or it cannot be read)."""
    out = np.full(len(data), -1, dtype=np.int64)
    for index, (value, encoding, kind) in enumerate(
        zip(data.to_pylist(), encodings.to_pylist(), content_types.to_pylist(), strict=True)
    ):
        values = decode_values(value, encoding or "JSON", (kind or "").lower())
        if values is not None:
            out[index] = len(values)
    return out


def _values(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        for key in _KEYS:
            if key in value:
                return _values(value[key])
        return None
    if isinstance(value, list):
        return value
    return [value]


def _cell(text: str) -> Any:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
