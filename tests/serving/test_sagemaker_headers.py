"""``X-Amzn-SageMaker-Custom-Attributes`` and ``X-Amzn-SageMaker-Inference-Id``: their limits, their log lines.

SageMaker's InvokeEndpoint takes at most 1,024 (US-ASCII) characters of CustomAttributes and an InferenceId of
1 to 64 characters (botocore's sagemaker-runtime model: CustomAttributesHeader max 1024, InferenceId max 64)
and refuses more with a ValidationError before a container sees the request. A client calling the container
directly with more gets a 400 in JSON, and the value is neither echoed nor logged whole. Values are echoed as
the bytes received and logged decoded as UTF-8 (bytes that are not UTF-8 as ``\\xNN``).
"""

from __future__ import annotations

import socket
import uuid

import orjson
import pytest

from infra.server import Server

pytestmark = pytest.mark.integration

INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"


def invoke(
    server: Server, rows: list[list[float]], headers: dict[bytes, bytes]
) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST /invocations over a raw socket (header bytes sent and read back exactly); status, headers, body."""
    body = orjson.dumps(rows)
    head = b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers.items())
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answer_head, _, answer_body = data.partition(b"\r\n\r\n")
    lines = answer_head.split(b"\r\n")
    answer_headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        answer_headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), answer_headers, answer_body


def unique() -> bytes:
    return f"t-{uuid.uuid4().hex[:20]}".encode()


def test_custom_attributes_of_1024_bytes_are_echoed_and_logged(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    marker = unique()
    attributes = marker + b"a" * (1024 - len(marker))
    status, headers, _ = invoke(digits_server, digits_rows[:1], {ATTRIBUTES: attributes})
    assert status == 200
    assert headers[ATTRIBUTES] == attributes
    line = digits_server.wait_log(lambda e: e.get("custom_attributes", "").startswith(marker.decode()))
    assert line["custom_attributes"] == attributes.decode()


@pytest.mark.parametrize("size", [1025, 60_000])
def test_custom_attributes_over_1024_bytes_are_a_400(
    digits_server: Server, digits_rows: list[list[float]], size: int
) -> None:
    inference_id = unique()
    status, headers, body = invoke(
        digits_server, digits_rows[:1], {INFERENCE_ID: inference_id, ATTRIBUTES: b"a" * size}
    )
    assert status == 400
    assert headers[b"content-type"] == b"application/json"
    error = orjson.loads(body)
    assert set(error) == {"error", "message"} and error["error"] == "BadRequest"
    assert "X-Amzn-SageMaker-Custom-Attributes" in error["message"] and "1024" in error["message"]
    assert ATTRIBUTES not in headers  # not echoed
    assert headers[INFERENCE_ID] == inference_id  # the valid one still is
    line = digits_server.wait_log(lambda e: e.get("inference_id") == inference_id.decode())
    assert line["status"] == 400
    assert len(line.get("custom_attributes", "")) <= 1100  # a prefix, not half a megabyte


def test_half_a_megabyte_of_custom_attributes_is_over_the_head_cap(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    """Over SHIPYARD_MAX_HEADER_BYTES the request never reaches the application: 431, nothing echoed or logged."""
    marker = unique()
    status, headers, body = invoke(digits_server, digits_rows[:1], {ATTRIBUTES: marker + b"a" * (512 * 1024)})
    assert status == 431
    assert orjson.loads(body)["error"] == "RequestHeaderFieldsTooLarge"
    assert ATTRIBUTES not in headers
    assert marker.decode() not in digits_server.log_text()


@pytest.mark.parametrize(("size", "status"), [(64, 200), (65, 400), (4096, 400)])
def test_an_inference_id_may_have_64_characters(
    digits_server: Server, digits_rows: list[list[float]], size: int, status: int
) -> None:
    marker = unique()
    inference_id = marker + b"i" * (size - len(marker))
    got, headers, body = invoke(digits_server, digits_rows[:1], {INFERENCE_ID: inference_id})
    assert got == status
    if status == 400:
        assert "X-Amzn-SageMaker-Inference-Id" in orjson.loads(body)["message"]
        assert INFERENCE_ID not in headers
    else:
        assert headers[INFERENCE_ID] == inference_id


def test_non_ascii_values_are_logged_as_utf_8_and_echoed_as_sent(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    marker = unique()
    inference_id = marker + "-é-ü".encode()
    attributes = marker + "-tenant=Zürich,".encode() + b"raw=\xff\xfe"  # the last two bytes are not UTF-8
    status, headers, _ = invoke(digits_server, digits_rows[:1], {INFERENCE_ID: inference_id, ATTRIBUTES: attributes})
    assert status == 200
    assert headers[INFERENCE_ID] == inference_id
    assert headers[ATTRIBUTES] == attributes
    line = digits_server.wait_log(lambda e: e.get("inference_id", "").startswith(marker.decode()))
    assert line["inference_id"] == marker.decode() + "-é-ü"  # not "-Ã©-Ã¼"
    assert line["custom_attributes"] == marker.decode() + "-tenant=Zürich,raw=\\xff\\xfe"
