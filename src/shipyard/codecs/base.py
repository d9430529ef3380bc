"""What a codec is: bytes of one media type to a payload, and predictions back to bytes."""

from __future__ import annotations

from typing import Any, Protocol

from shipyard.codecs.media import MediaType

__all__ = ["Codec", "Decoder", "to_python"]


class Decoder(Protocol):
    """Decodes a request body into a *payload*.

    A payload is what the request carried, before any schema is applied: a list of rows (each a list,
    a record ``dict`` or a scalar such as a text), a single row or record, a numpy array, or (from NPZ) a
    scipy sparse matrix.
    """

    media_type: str

    def decode(self, body: bytes, media: MediaType) -> Any: ...


class Codec(Decoder, Protocol):
    """A decoder that also encodes predictions (the types the server can answer in)."""

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes: ...


def to_python(value: Any) -> Any:
    """numpy scalars and arrays as plain Python values (for the encoders that need them)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value
