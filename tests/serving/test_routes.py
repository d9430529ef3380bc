"""The real server (``serve`` in a subprocess) over real HTTP: every route, every codec, the 4xx answers."""

from __future__ import annotations

import io
import socket
import uuid
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from infra.server import Server

pytestmark = pytest.mark.integration

CODEC_TYPES = ["application/json", "text/csv", "application/x-npy", "application/jsonlines"]


def encode_rows(rows: list[list[float]], content_type: str) -> bytes:
    if content_type == "application/json":
        return orjson.dumps({"instances": rows})
    if content_type == "text/csv":
        return "".join(",".join(map(repr, row)) + "\n" for row in rows).encode()
    if content_type == "application/x-npy":
        out = io.BytesIO()
        np.save(out, np.asarray(rows))
        return out.getvalue()
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def decode_predictions(body: bytes, content_type: str) -> list[Any]:
    if content_type.startswith("application/jsonlines"):
        return [orjson.loads(line) for line in body.splitlines()]
    if content_type.startswith("application/json"):
        return list(orjson.loads(body)["predictions"])
    if content_type.startswith("text/csv"):
        return [int(float(line)) for line in body.decode().split()]
    if content_type.startswith("application/x-npy"):
        return list(np.load(io.BytesIO(body)).tolist())
    raise AssertionError(f"unexpected answer type {content_type}")


def post(server: Server, body: bytes, content_type: str | None = "application/json", **headers: str) -> httpx.Response:
    all_headers = {**({"content-type": content_type} if content_type else {}), **headers}
    return httpx.post(f"{server.url}/invocations", content=body, headers=all_headers, timeout=30)


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    document: dict[str, str] = response.json()
    assert set(document) == {"error", "message"}
    return document


# -- routes ------------------------------------------------------------------------------------------
def test_ping(digits_server: Server) -> None:
    response = httpx.get(f"{digits_server.url}/ping")
    assert response.status_code == 200
    assert response.content == b""
    assert httpx.head(f"{digits_server.url}/ping").status_code == 200


def test_execution_parameters(digits_server: Server) -> None:
    response = httpx.get(f"{digits_server.url}/execution-parameters")
    assert response.status_code == 200
    assert response.json() == {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_invocations_digits(digits_server: Server, digits_rows: list[list[float]], digits_bundle: Any) -> None:
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    response = post(digits_server, orjson.dumps({"instances": digits_rows}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize("accept", CODEC_TYPES)
@pytest.mark.parametrize("content_type", CODEC_TYPES)
def test_every_codec_in_and_out(
    digits_server: Server, digits_rows: list[list[float]], digits_bundle: Any, content_type: str, accept: str
) -> None:
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    response = post(digits_server, encode_rows(digits_rows, content_type), content_type, accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == accept
    assert decode_predictions(response.content, accept) == expected


@pytest.mark.parametrize("content_type", CODEC_TYPES)
def test_missing_accept_answers_in_the_request_type(
    digits_server: Server, digits_rows: list[list[float]], content_type: str
) -> None:
    for accept in (None, "*/*"):
        headers = {"accept": accept} if accept else {}
        response = post(digits_server, encode_rows(digits_rows[:2], content_type), content_type, **headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    ("content_type", "accept", "answer"),
    [
        ("text/csv; charset=utf-8", "application/json; charset=utf-8", "application/json"),
        ("application/json; charset=utf-8", "text/csv;q=0.9, application/jsonlines", "application/jsonlines"),
        ("application/jsonl", "text/*", "text/csv"),
        (None, None, "application/json"),  # no Content-Type: read as JSON
    ],
)
def test_media_type_parameters_and_q_values(
    digits_server: Server, digits_rows: list[list[float]], content_type: str | None, accept: str | None, answer: str
) -> None:
    essence = (content_type or "application/json").split(";")[0]
    essence = {"application/jsonl": "application/jsonlines"}.get(essence, essence)
    headers = {"accept": accept} if accept else {}
    response = post(digits_server, encode_rows(digits_rows[:3], essence), content_type, **headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == answer
    assert len(decode_predictions(response.content, answer)) == 3


@pytest.mark.parametrize(
    "shape",
    [
        lambda rows: rows,  # bare rows
        lambda rows: rows[0],  # one row, bare
        lambda rows: {"instances": rows},
        lambda rows: {"inputs": rows},
    ],
    ids=["bare-rows", "single-row", "instances", "inputs"],
)
def test_json_shapes(digits_server: Server, digits_rows: list[list[float]], shape: Any) -> None:
    payload = shape(digits_rows)
    response = post(digits_server, orjson.dumps(payload))
    assert response.status_code == 200
    count = 1 if payload is digits_rows[0] else len(digits_rows)
    assert len(response.json()["predictions"]) == count


# -- 4xx ---------------------------------------------------------------------------------------------
def test_404(digits_server: Server) -> None:
    response = httpx.get(f"{digits_server.url}/predict")
    assert response.status_code == 404
    assert error_of(response) == {"error": "NotFound", "message": "no route /predict"}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/invocations"), ("PUT", "/invocations"), ("POST", "/ping"), ("POST", "/metrics")]
)
def test_405(digits_server: Server, method: str, path: str) -> None:
    response = httpx.request(method, f"{digits_server.url}{path}")
    assert response.status_code == 405
    assert error_of(response)["error"] == "MethodNotAllowed"
    assert response.headers["allow"] == ("POST" if path == "/invocations" else "GET, HEAD")
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[[1, 2, 3]]", "expected 64 features per row, got 3"),
        (b'[["a"]]', "expected 64 features per row, got 1"),
        (b"[]", "the request holds no rows"),
        (b"[" + b"0," * 63 + b"NaN]", "body is not valid JSON"),
        (b'{"pixel": 1}', "takes arrays, not records"),
    ],
)
def test_400_names_the_problem(digits_server: Server, body: bytes, message: str) -> None:
    response = post(digits_server, body)
    assert response.status_code == 400
    assert message in error_of(response)["message"]


def test_400_for_a_non_finite_csv_value(digits_server: Server, digits_rows: list[list[float]]) -> None:
    row = ",".join(["inf", *map(str, digits_rows[0][1:])])
    response = post(digits_server, row.encode(), "text/csv")
    assert response.status_code == 400
    assert error_of(response) == {"error": "SchemaMismatch", "message": "value at [0, 0] is not a finite number"}


def test_415(digits_server: Server) -> None:
    response = post(digits_server, b"hello", "text/plain")
    assert response.status_code == 415
    assert error_of(response)["error"] == "UnsupportedMediaType"
    assert "text/plain" in response.json()["message"]


def test_406(digits_server: Server, digits_rows: list[list[float]]) -> None:
    response = post(digits_server, orjson.dumps(digits_rows), accept="text/html")
    assert response.status_code == 406
    assert error_of(response)["error"] == "NotAcceptable"


def read_response_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_413_refused_from_content_length_before_the_body_is_sent(digits_server: Server) -> None:
    """A 100 MB Content-Length gets its 413 at once, though not one byte of the body was sent."""
    with socket.create_connection(("127.0.0.1", digits_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        head = read_response_head(sock)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"SAGEMAKER_MAX_PAYLOAD_IN_MB" in head or b"content-length" in head.lower()


def test_413_for_a_streamed_body_over_the_limit(digits_server: Server) -> None:
    """Without a Content-Length (chunked), the server stops reading once the limit is passed."""

    def chunks() -> Any:
        for _ in range(7 * 16):  # 7 MB in 64 KB chunks, over the 6 MB default
            yield b" " * 65536

    try:
        response = httpx.post(
            f"{digits_server.url}/invocations", content=chunks(), headers={"content-type": "application/json"}
        )
    except httpx.HTTPError:  # the server may answer and close before the client finished sending
        pytest.fail("the server closed the connection without answering 413")
    assert response.status_code == 413
    assert "the limit is 6.00 MB" in error_of(response)["message"]


def test_413_exactly_at_the_limit_is_accepted_as_a_request(digits_server: Server) -> None:
    body = b" " * (6 * 1024 * 1024 - 2) + b"[]"  # valid JSON of exactly 6 MB: read, then refused for its rows
    response = post(digits_server, body)
    assert response.status_code == 400
    assert "no rows" in error_of(response)["message"]


# -- headers, logs, metrics --------------------------------------------------------------------------
def test_inference_id_and_custom_attributes_are_echoed_and_logged(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    inference_id = f"test-{uuid.uuid4()}"
    attributes = "trace_id=abc123,tenant=acme"
    response = post(
        digits_server,
        orjson.dumps(digits_rows[:2]),
        **{"x-amzn-sagemaker-inference-id": inference_id, "x-amzn-sagemaker-custom-attributes": attributes},
    )
    assert response.status_code == 200
    assert response.headers["x-amzn-sagemaker-inference-id"] == inference_id
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == attributes

    line = digits_server.wait_log(lambda entry: entry.get("inference_id") == inference_id)
    assert line["path"] == "/invocations"
    assert line["status"] == 200
    assert line["custom_attributes"] == attributes
    assert line["bytes_in"] == len(orjson.dumps(digits_rows[:2]))
    assert line["bytes_out"] == len(response.content)
    assert line["ms"] > 0
    assert isinstance(line["pid"], int)


def test_error_answers_are_logged_too(digits_server: Server) -> None:
    inference_id = f"test-{uuid.uuid4()}"
    response = post(digits_server, b"[[1]]", **{"x-amzn-sagemaker-inference-id": inference_id})
    assert response.status_code == 400
    assert response.headers["x-amzn-sagemaker-inference-id"] == inference_id
    line = digits_server.wait_log(lambda entry: entry.get("inference_id") == inference_id)
    assert line["status"] == 400


def test_every_stdout_line_is_json(digits_server: Server) -> None:
    lines = [line for line in digits_server.log_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(orjson.loads(line), dict), line


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text`` (labels in any order)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        sample_name, _, label_text = sample.partition("{")
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        if sample_name == name and {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_metrics(digits_server: Server, digits_rows: list[list[float]]) -> None:
    url = f"{digits_server.url}/metrics"
    before = httpx.get(url).text
    ok_before = metric(before, "shipyard_requests_total", route="invocations", code="200")
    for _ in range(3):
        assert post(digits_server, orjson.dumps(digits_rows)).status_code == 200
    assert post(digits_server, b"[[1]]").status_code == 400
    assert post(digits_server, b"x", "text/plain").status_code == 415

    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "shipyard_requests_total", route="invocations", code="200") == ok_before + 3
    assert metric(text, "shipyard_request_duration_seconds_count", route="invocations") >= ok_before + 5
    assert metric(text, "shipyard_request_duration_seconds_bucket", route="invocations", le="+Inf") >= 5
    assert metric(text, "shipyard_errors_total", code="400", reason="SchemaMismatch") >= 1
    assert metric(text, "shipyard_errors_total", code="415", reason="UnsupportedMediaType") >= 1
    assert metric(text, "shipyard_batch_rows_count") >= 3
    assert metric(text, "shipyard_batch_rows_sum") >= 3 * len(digits_rows)
    assert metric(text, "shipyard_batch_requests_bucket", le="1.0") >= 1
    assert metric(text, "shipyard_predict_seconds_count") >= 3
    assert metric(text, "shipyard_queue_depth") == 0
    assert metric(text, "shipyard_requests_total", route="ping", code="200") >= 1
