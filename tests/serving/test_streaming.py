"""Response streaming over real HTTP: a handler script whose predict_fn is a generator answers /invocations
chunk by chunk (chunked transfer encoding, no Content-Length), in both compute modes (the model in a child
process, and SHIPYARD_MODEL_PROCESS=0)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.server import Server, ServerFactory

SCRIPT = """
import json
import socket
import time


def model_fn(model_dir):
    return "model"


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model):
    gaps = data.get("gaps", [])
    for i in range(data.get("n", 3)):
        if data.get("fail_at") == i:
            raise ValueError(f"chunk {i} failed")
        time.sleep(gaps[i] if i < len(gaps) else data.get("gap", 0.0))
        if data.get("marker"):
            with open(data["marker"], "a") as made:
                made.write(f"{i}\\n")
        yield {"i": i, "t": time.time()}
"""

OUTPUT_FN = """
def output_fn(prediction, accept):
    return f"<{prediction['i']}>", "text/plain"
"""

PLAIN = """
def model_fn(model_dir):
    return None


def predict_fn(data, model):
    return [[float(sum(row))] for row in data]
"""

MODES = {"model-process": {}, "inline": {"SHIPYARD_MODEL_PROCESS": "0"}}


@pytest.fixture(scope="module", params=list(MODES))
def stream_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"stream-{request.param}")
    bundle = _bundle(directory / "bundle", SCRIPT)
    factory = ServerFactory(directory)
    env = {**MODES[request.param], "SAGEMAKER_MODEL_SERVER_TIMEOUT": "2", "SHIPYARD_OVERRUN_GRACE": "1"}
    yield factory(bundle, env=env)
    factory.close()


def _bundle(directory: Path, script: str) -> Path:
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "inference.py").write_text(script)
    return directory


def _stream(
    server: Server, payload: dict[str, Any], *, broken: bool = False, **headers: str
) -> tuple[httpx.Response, list[tuple[float, bytes]]]:
    """POST and read the answer chunk by chunk: ``(response, [(arrival time, bytes), ...])``. ``broken``: the
    answer must end in a broken connection (a chunked body with no terminating chunk), after those chunks."""
    arrivals: list[tuple[float, bytes]] = []
    with httpx.stream(
        "POST",
        f"{server.url}/invocations",
        content=json.dumps(payload),
        headers={"content-type": "application/json", **headers},
        timeout=30,
    ) as response:
        if not broken:
            for data in response.iter_raw():
                arrivals.append((time.time(), data))
            return response, arrivals
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            for data in response.iter_raw():
                arrivals.append((time.time(), data))
    return response, arrivals


def _records(arrivals: list[tuple[float, bytes]]) -> list[dict[str, Any]]:
    body = b"".join(data for _, data in arrivals)
    return [json.loads(line) for line in body.splitlines()]


def test_chunks_arrive_as_they_are_made(stream_server: Server) -> None:
    response, arrivals = _stream(stream_server, {"n": 4, "gap": 0.4})
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.headers["content-type"] == "application/jsonlines"
    records = _records(arrivals)
    assert [record["i"] for record in records] == [0, 1, 2, 3]
    assert len(arrivals) == 4  # each chunk its own read: nothing was collected first
    first_arrival = arrivals[0][0]
    last_made = records[-1]["t"]
    assert first_arrival < last_made - 0.8  # the first was here ~1.2 s before the last was even produced
    for (arrived, data), record in zip(arrivals, records, strict=True):
        assert json.loads(data)["i"] == record["i"]
        assert arrived >= record["t"] - 0.05  # read after it was made, and soon after
        assert arrived < record["t"] + 1.0  # (generous: the machine may be busy)


def test_error_before_the_first_chunk_is_an_ordinary_answer(stream_server: Server) -> None:
    response = httpx.post(f"{stream_server.url}/invocations", json={"n": 3, "fail_at": 0}, timeout=30)
    assert response.status_code == 500
    assert "content-length" in response.headers
    assert response.json()["error"] == "ModelError"
    assert "chunk 0 failed" in response.json()["message"]


def test_error_mid_stream_ends_with_an_error_record_and_a_broken_connection(stream_server: Server) -> None:
    response, arrivals = _stream(stream_server, {"n": 5, "fail_at": 2}, broken=True)
    assert response.status_code == 200  # sent with the first chunk; it cannot become a 500
    records = _records(arrivals)
    assert [record.get("i") for record in records[:2]] == [0, 1]
    assert len(records) == 3
    error = records[2]["ModelStreamError"]
    assert error["ErrorCode"] == "ModelError"
    assert "chunk 2 failed" in error["Message"]
    stream_server.wait_log(lambda line: "failed after 2 chunks" in line.get("message", ""))
    assert _stream(stream_server, {"n": 2})[0].status_code == 200  # the server goes on
    assert "Exception in ASGI application" not in stream_server.log_text()  # broken on purpose: no traceback


def test_error_mid_stream_is_no_whole_answer_to_a_plain_client(stream_server: Server) -> None:
    """A client that reads the body and never looks for the error record (the async queue, batch transform, a
    plain invoke) gets an error, not a 200 with a cut-short body."""
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        httpx.post(f"{stream_server.url}/invocations", json={"n": 5, "fail_at": 2}, timeout=30)


def test_error_mid_stream_on_the_wire_has_no_terminating_chunk(stream_server: Server) -> None:
    """Raw bytes: the error record as the last chunk, starting its own line, then the connection closed with
    no ``0\\r\\n\\r\\n``; and it is counted as a 500."""
    host, port = stream_server.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"n": 5, "fail_at": 2}).encode()
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        wire = b""
        while data := sock.recv(65536):  # to the end: the server closes the connection
            wire += data
    head, _, chunked = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert not chunked.endswith(b"0\r\n\r\n")
    pieces = []
    while chunked:
        size, _, rest = chunked.partition(b"\r\n")
        pieces.append(rest[: int(size, 16)])
        chunked = rest[int(size, 16) + 2 :]
    assert 0 not in [len(piece) for piece in pieces]  # no terminating chunk
    assert pieces[-1].startswith(b'{"ModelStreamError":') and pieces[-1].endswith(b"\n")
    assert b"".join(pieces[:-1]).endswith(b"\n")  # it starts a line
    metrics = httpx.get(f"{stream_server.url}/metrics", timeout=30).text
    assert 'shipyard_errors_total{code="500",reason="ModelError"}' in metrics


def test_a_gap_over_the_timeout_ends_the_stream(stream_server: Server) -> None:
    """SAGEMAKER_MODEL_SERVER_TIMEOUT (2 s here) applies to the gap before each chunk, not the whole stream."""
    started = time.time()
    response, arrivals = _stream(stream_server, {"n": 6, "gaps": [0, 1.5, 1.5, 1.5, 5]}, broken=True)
    assert response.status_code == 200
    records = _records(arrivals)
    assert [record.get("i") for record in records[:4]] == [0, 1, 2, 3]  # 4.5 s in all: longer than the timeout
    assert records[4]["ModelStreamError"]["ErrorCode"] == "ModelInvocationTimeExceeded"
    assert time.time() - started < 8
    # the model process overran and is replaced; the inline model's call cannot be cut short: it ends on its own
    assert _eventually_streams(stream_server)


def _eventually_streams(server: Server, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if _stream(server, {"n": 2})[0].status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def test_no_first_chunk_within_the_timeout_is_a_504(stream_server: Server) -> None:
    response = httpx.post(f"{stream_server.url}/invocations", json={"n": 1, "gap": 4}, timeout=30)
    assert response.status_code == 504
    assert response.json()["error"] == "Timeout"
    assert _eventually_streams(stream_server)  # the model's call ends (inline) or its process is replaced


def test_client_disconnect_stops_the_generator(stream_server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "made.txt"
    with httpx.stream(
        "POST", f"{stream_server.url}/invocations", json={"n": 100, "gap": 0.1, "marker": str(marker)}, timeout=30
    ) as response:
        for got, _ in enumerate(response.iter_raw(), 1):
            if got == 2:
                break  # leaving the block closes the connection
    time.sleep(1.0)
    made = len(marker.read_text().splitlines())
    time.sleep(0.6)
    assert len(marker.read_text().splitlines()) == made  # stopped: nothing is made any more
    assert made < 10
    response, _ = _stream(stream_server, {"n": 2})  # and the model is free for the next request
    assert response.status_code == 200


def test_output_fn_encodes_each_chunk(running_server: ServerFactory, tmp_path: Path) -> None:
    server = running_server(_bundle(tmp_path / "bundle", SCRIPT + OUTPUT_FN), env={"SHIPYARD_MODEL_PROCESS": "0"})
    response, arrivals = _stream(server, {"n": 3, "gap": 0.2})
    assert response.headers["content-type"] == "text/plain"
    assert [data for _, data in arrivals] == [b"<0>", b"<1>", b"<2>"]


def test_a_handler_that_does_not_yield_is_answered_as_before(running_server: ServerFactory, tmp_path: Path) -> None:
    server = running_server(_bundle(tmp_path / "bundle", PLAIN))
    response = httpx.post(f"{server.url}/invocations", json=[[1, 2], [3, 4]], timeout=30)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers
    assert response.json() == [[3.0], [7.0]]


def test_a_saved_bundle_streams_n_rows_a_chunk(
    running_server: ServerFactory, digits_bundle: Path, digits_rows: list[list[float]], digits_server: Server
) -> None:
    """SHIPYARD_STREAM_ROWS: any flavor's answer predicted and sent that many rows at a time (in the model process)."""
    server = running_server(digits_bundle, env={"SHIPYARD_STREAM_ROWS": "2"})
    rows = digits_rows[:5]
    response, arrivals = _stream(server, {"instances": rows})
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"] == "application/jsonlines"
    assert [data.count(b"\n") for _, data in arrivals] == [2, 2, 1]  # one chunk per 2 rows
    whole = httpx.post(f"{digits_server.url}/invocations", json={"instances": rows}, timeout=30).json()
    assert [json.loads(line) for line in b"".join(d for _, d in arrivals).splitlines()] == whole["predictions"]
