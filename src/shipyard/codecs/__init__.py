"""Codecs by media type, and content negotiation.

``decoder_for`` picks the decoder of a request's ``Content-Type`` (415 when none fits); ``encoder_for``
picks the answer's codec from ``Accept`` (406 when none fits). A missing ``Accept`` or ``*/*`` answers in
the request's own type (or ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when it is set); a request in a type
the server only reads (NPZ) is answered in JSON.
"""

from __future__ import annotations

from functools import lru_cache

from shipyard.codecs.base import Codec, Decoder
from shipyard.codecs.csv import CSVCodec, CSVRows
from shipyard.codecs.json import JSONCodec
from shipyard.codecs.jsonlines import JSONLinesCodec
from shipyard.codecs.media import MediaType, canonical, parse_accept, parse_media_type
from shipyard.codecs.npy import NPYCodec
from shipyard.codecs.npz import NPZDecoder
from shipyard.errors import NotAcceptable, UnsupportedMediaType

__all__ = [
    "CODECS",
    "DECODERS",
    "CSVRows",
    "Codec",
    "Decoder",
    "MediaType",
    "decoder_for",
    "encoder_for",
    "parse_media_type",
]

# What the server answers in (and reads).
CODECS: dict[str, Codec] = {
    codec.media_type: codec for codec in (JSONCodec(), CSVCodec(), NPYCodec(), JSONLinesCodec())
}
# What the server reads: the above, and NPZ (the toolkit's decoders read it; no encoder writes it).
DECODERS: dict[str, Decoder] = {**CODECS, NPZDecoder.media_type: NPZDecoder()}
READABLE = ", ".join(DECODERS)
ANSWERABLE = ", ".join(CODECS)


def decoder_for(content_type: str | None) -> tuple[Decoder, MediaType]:
    media = parse_media_type(content_type) or parse_media_type("application/json")
    assert media is not None
    decoder = DECODERS.get(media.essence)
    if decoder is None:
        raise UnsupportedMediaType(f"Content-Type {content_type!r} is not supported; use one of: {READABLE}")
    return decoder, media


@lru_cache(maxsize=512)
def encoder_for(accept: str | None, request_type: str, default: str | None = None) -> Codec:
    """The codec that answers: the first acceptable one, ``*/*`` meaning the request's own type."""
    for wanted in parse_accept(accept):
        if wanted == "*/*":
            preferred = parse_media_type(default)  # the setting may carry parameters: text/csv; charset=utf-8
            essence = preferred.essence if preferred else canonical(request_type)
            return CODECS.get(essence, CODECS["application/json"])
        if wanted.endswith("/*"):
            family = wanted[:-1]
            if request_type.startswith(family) and request_type in CODECS:
                return CODECS[request_type]
            for media_type, codec in CODECS.items():
                if media_type.startswith(family):
                    return codec
            continue
        if wanted in CODECS:
            return CODECS[wanted]
    raise NotAcceptable(f"cannot answer in {accept!r}; this server answers in: {ANSWERABLE}")
