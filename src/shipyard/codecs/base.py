"""What a codec is: bytes of one media type to a payload, and predictions back to bytes."""

from __future__ import annotations

from typing import Any, Protocol

from shipyard.codecs.media import MediaType

__all__ = ["Codec", "to_python"]


class Codec(Protocol):
    """Decodes a request body into a *payload* and encodes predictions.

    A payload is what the request carried, before any schema is applied: a list of rows (each a list,
    a record ``dict`` or a scalar such as a text), a single row or record, or a numpy array.
    """

    media_type: str

    def decode(self, body: bytes, media: MediaType) -> Any: ...

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes: ...


def to_python(value: Any) -> Any:
    """numpy scalars and arrays as plain Python values (for the encoders that need them)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value
