"""CSV with a UTF-8 byte order mark, as Excel saves it ("CSV UTF-8"), through the real server.

The CSV codec drops a leading BOM, so a native bundle and a handler bundle's default input_fn read such a body
as the same CSV without it. A handler's own ``input_fn`` gets the text the SageMaker inference toolkit hands it,
``body.decode("utf-8")``, which keeps the BOM (``"\\ufeff1,2"``): its script may already deal with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from infra.server import Server, ServerFactory
from shipyard.codecs import decoder_for

pytestmark = pytest.mark.integration

BOM = b"\xef\xbb\xbf"


def csv_of(rows: list[list[float]]) -> bytes:
    return "".join(",".join(map(repr, row)) + "\n" for row in rows).encode()


def post(url: str, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=body, headers={"content-type": content_type}, timeout=30)


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8", "text/csv;charset=UTF-8"])
def test_a_native_bundle_reads_csv_with_a_bom(
    digits_server: Server, digits_rows: list[list[float]], content_type: str
) -> None:
    plain = post(digits_server.url, csv_of(digits_rows[:3]), content_type)
    with_bom = post(digits_server.url, BOM + csv_of(digits_rows[:3]), content_type)
    assert plain.status_code == 200
    assert with_bom.status_code == 200, with_bom.text
    assert with_bom.content == plain.content


def test_a_bom_is_dropped_only_at_the_start() -> None:
    decoder, media = decoder_for("text/csv")
    assert decoder.decode(BOM + b"1,2\n3,4\n", media) == [["1", "2"], ["3", "4"]]
    assert decoder.decode(BOM + b'"a",1\n', media) == [["a", "1"]]  # the quoted (csv module) path too
    decoder, media = decoder_for("text/csv; charset=utf-16-le")
    assert decoder.decode("\ufeff1,2\n".encode("utf-16-le"), media) == [["1", "2"]]
    decoder, media = decoder_for("text/csv")
    assert decoder.decode(b"1,\xef\xbb\xbf2\n", media) == [["1", "\ufeff2"]]  # inside a row it is data


DEFAULT_INPUT = """
def model_fn(model_dir):
    return lambda data: data.sum(axis=1)
"""

OWN_INPUT = """
import json

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return json.dumps({"type": type(prediction).__name__, "text": prediction}), "application/json"
"""


def test_a_handler_bundle_default_input_fn_reads_csv_with_a_bom(
    make_handler_bundle: Callable[[str], Path], running_server: ServerFactory
) -> None:
    server = running_server(make_handler_bundle(DEFAULT_INPUT))
    for body in (b"1,2\n3,4\n", BOM + b"1,2\n3,4\n"):
        answer = post(server.url, body, "text/csv")
        assert answer.status_code == 200, answer.text
        assert answer.text.split() == ["3.0", "7.0"]


def test_a_handler_input_fn_gets_the_text_the_toolkit_gives_it(
    make_handler_bundle: Callable[[str], Path], running_server: ServerFactory
) -> None:
    server = running_server(make_handler_bundle(OWN_INPUT))
    body = BOM + b"1,2\n"
    answer = post(server.url, body, "text/csv; charset=utf-8")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"type": "str", "text": body.decode("utf-8")}  # the toolkit's decode("utf-8")
    assert answer.json()["text"].startswith("\ufeff")
