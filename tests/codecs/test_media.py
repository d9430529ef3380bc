"""Media-type parsing and content negotiation (Content-Type → decoder, Accept → encoder)."""

from __future__ import annotations

import pytest

from shipyard.codecs import CODECS, decoder_for, encoder_for, parse_media_type
from shipyard.codecs.media import canonical, parse_accept
from shipyard.errors import NotAcceptable, UnsupportedMediaType


@pytest.mark.parametrize(
    ("header", "essence", "charset"),
    [
        ("application/json", "application/json", "utf-8"),
        ("text/csv; charset=utf-8", "text/csv", "utf-8"),
        ('TEXT/CSV;Charset="ISO-8859-1"', "text/csv", "iso-8859-1"),
        ("text/csv;header=present; charset=latin-1", "text/csv", "latin-1"),
        ("  application/x-npy  ", "application/x-npy", "utf-8"),
        ("application/jsonl", "application/jsonlines", "utf-8"),
        ("application/x-ndjson", "application/jsonlines", "utf-8"),
        ("text/json", "application/json", "utf-8"),
        ("application/csv", "text/csv", "utf-8"),
    ],
)
def test_parse_media_type_strips_parameters_and_normalises(header: str, essence: str, charset: str) -> None:
    media = parse_media_type(header)
    assert media is not None
    assert media.essence == essence
    assert media.charset == charset


@pytest.mark.parametrize("header", [None, "", "   ", "; charset=utf-8"])
def test_parse_media_type_missing(header: str | None) -> None:
    assert parse_media_type(header) is None


def test_parse_media_type_keeps_other_parameters() -> None:
    media = parse_media_type("text/csv; header=present; charset=utf-8")
    assert media is not None
    assert ("header", "present") in media.params


def test_canonical_leaves_unknown_types_alone() -> None:
    assert canonical("image/png") == "image/png"


@pytest.mark.parametrize(
    ("header", "ranked"),
    [
        (None, ("*/*",)),
        ("", ("*/*",)),
        ("text/csv", ("text/csv",)),
        ("application/json;q=0.5, text/csv", ("text/csv", "application/json")),
        ("text/csv;q=0.2, application/json;q=0.9, */*;q=0.1", ("application/json", "text/csv", "*/*")),
        ("application/json, text/csv", ("application/json", "text/csv")),  # equal q: the order sent
        ("text/csv;q=0, application/json", ("application/json",)),  # q=0 means "not this"
        ("text/csv;q=bogus, application/json", ("application/json",)),
        ("application/jsonl", ("application/jsonlines",)),
    ],
)
def test_parse_accept_orders_by_quality(header: str | None, ranked: tuple[str, ...]) -> None:
    assert parse_accept(header) == ranked


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/csv; charset=utf-8", "application/x-npy", "application/jsonlines", "text/json"],
)
def test_decoder_for_known_types(content_type: str) -> None:
    codec, media = decoder_for(content_type)
    assert codec is CODECS[media.essence]


def test_decoder_for_missing_content_type_reads_json() -> None:
    codec, media = decoder_for(None)
    assert codec.media_type == "application/json"
    assert media.essence == "application/json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", "image/png", "garbage"])
def test_decoder_for_unsupported_type_is_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="not supported; use one of") as info:
        decoder_for(content_type)
    assert info.value.http_status == 415
    assert content_type in str(info.value)


@pytest.mark.parametrize(
    ("accept", "request_type", "default", "answer"),
    [
        (None, "text/csv", None, "text/csv"),  # missing Accept: the request's own type
        ("", "application/x-npy", None, "application/x-npy"),
        ("*/*", "application/jsonlines", None, "application/jsonlines"),
        ("*/*", "text/csv", "application/json", "application/json"),  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
        (None, "text/csv", "application/jsonlines", "application/jsonlines"),
        ("*/*", "application/json", "text/csv; charset=utf-8", "text/csv"),  # the setting with a parameter
        ("text/csv", "application/json", None, "text/csv"),
        ("text/csv; charset=utf-8", "application/json", None, "text/csv"),
        ("application/json;q=0.5, text/csv", "application/json", None, "text/csv"),
        ("image/png, application/json;q=0.1", "text/csv", None, "application/json"),  # first satisfiable
        ("text/*", "application/json", None, "text/csv"),
        ("application/*", "application/x-npy", None, "application/x-npy"),  # the request's type when it fits
        ("text/html, */*;q=0.8", "text/csv", None, "text/csv"),
        ("application/x-ndjson", "application/json", None, "application/jsonlines"),
    ],
)
def test_encoder_for_negotiates(accept: str | None, request_type: str, default: str | None, answer: str) -> None:
    assert encoder_for(accept, request_type, default).media_type == answer


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/plain", "text/csv;q=0", "*/*;q=0", "video/*"])
def test_encoder_for_unsatisfiable_accept_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="cannot answer in") as info:
        encoder_for(accept, "application/json")
    assert info.value.http_status == 406
