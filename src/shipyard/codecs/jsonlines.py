"""``application/jsonlines``: one JSON value per line, each line a row (array, record or scalar).

Answers carry one prediction per line, in order.
"""

from __future__ import annotations

from typing import Any

import orjson

from shipyard.codecs.json import dumps
from shipyard.codecs.media import MediaType
from shipyard.errors import RequestError

__all__ = ["JSONLinesCodec"]


class JSONLinesCodec:
    media_type = "application/jsonlines"

    def decode(self, body: bytes, media: MediaType) -> Any:
        rows = []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise RequestError(f"line {number} is not valid JSON: {exc}") from None
        if not rows:
            raise RequestError("body holds no JSON lines")
        return rows

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes:
        if not isinstance(predictions, list | tuple) and getattr(predictions, "ndim", 1) == 0:
            predictions = [predictions]
        return b"".join(dumps(row) + b"\n" for row in predictions)
