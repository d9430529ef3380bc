"""``application/json``.

Requests may take any of the shapes users already send:

* a bare array of rows: ``[[1, 2], [3, 4]]`` (or one row: ``[1, 2]``, or texts: ``["hi", "yo"]``);
* ``{"instances": ...}`` (SageMaker / TF Serving) or ``{"inputs": ...}`` (Hugging Face / KServe v1);
* records keyed by feature name: ``[{"a": 1, "b": 2}]`` or a single ``{"a": 1, "b": 2}``.

Answers are ``{"predictions": [...]}``: one entry per input row, in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from shipyard.codecs.base import to_python
from shipyard.codecs.media import MediaType
from shipyard.errors import RequestError

__all__ = ["JSONCodec", "unwrap"]

_ENVELOPES = ("instances", "inputs")
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def unwrap(document: Any) -> Any:
    """Strip the ``instances``/``inputs`` envelope, if any."""
    if isinstance(document, dict):
        for key in _ENVELOPES:
            if key in document:
                return document[key]
    return document


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS)
    except TypeError:
        # Object arrays, non-contiguous views and numpy scalars inside lists: go through Python values.
        return orjson.dumps(_plain(value), option=_DUMP_OPTIONS)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return to_python(value)


class JSONCodec:
    media_type = "application/json"

    def decode(self, body: bytes, media: MediaType) -> Any:
        try:
            document = orjson.loads(body if media.charset in ("utf-8", "utf8") else _recode(body, media))
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"body is not valid JSON: {exc}") from None
        return unwrap(document)

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes:
        return dumps({"predictions": predictions} if envelope else predictions)


def _recode(body: bytes, media: MediaType) -> bytes:
    try:
        return body.decode(media.charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError) as exc:
        raise RequestError(f"body is not valid {media.charset}: {exc}") from None
