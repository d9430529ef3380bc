"""The server's edge over raw sockets: head size and time limits, the connection cap, JSON for every answer.

Each test talks to a real ``serve`` subprocess; the answers checked are the ones uvicorn would otherwise write
itself (``text/plain``), or never write (a connection left open forever).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from infra.server import Server, ServerFactory, free_port

pytestmark = pytest.mark.integration


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def error(self) -> dict[str, str]:
        """The JSON error document of this answer (and that it is one)."""
        assert self.headers.get("content-type") == "application/json", (self.status, self.headers, self.body)
        document: dict[str, str] = orjson.loads(self.body)
        assert set(document) == {"error", "message"}, document
        return document


def read_answer(sock: socket.socket, pending: bytearray | None = None) -> Answer:
    """One HTTP/1.1 answer read from ``sock`` (its head, then Content-Length bytes of body).

    ``pending``: bytes already received and not yet read, kept across calls (answers to pipelined requests
    arrive back to back).
    """
    data = pending if pending is not None else bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed before an answer; got {bytes(data[:200])!r}")
        data += chunk
    end = data.index(b"\r\n\r\n")
    lines = bytes(data[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(data) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    body = bytes(data[end + 4 : end + 4 + length])
    del data[: end + 4 + length]
    return Answer(status, headers, body)


def send_and_read(port: int, data: bytes, timeout: float = 10) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered and closed before all was sent
            sock.sendall(data)
        return read_answer(sock)


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What ``sock`` received until the server closed it, or None if it is still open after ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        return received


# -- 1. the size of a request head -------------------------------------------------------------------
def test_a_1_mb_header_is_answered_431_in_json_at_once(digits_server: Server) -> None:
    request = b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    started = time.monotonic()
    answer = send_and_read(digits_server.port, request)
    elapsed = time.monotonic() - started
    assert answer.status == 431
    assert answer.headers["connection"] == "close"
    error = answer.error()
    assert error["error"] == "RequestHeaderFieldsTooLarge"
    assert "SHIPYARD_MAX_HEADER_BYTES" in error["message"]
    assert elapsed < 2, elapsed
    assert httpx.get(f"{digits_server.url}/ping").status_code == 200
    metrics = httpx.get(f"{digits_server.url}/metrics").text
    assert 'shipyard_errors_total{code="431",reason="RequestHeaderFieldsTooLarge"}' in metrics


@pytest.mark.parametrize(("size", "status"), [(65536, 200), (65537, 431)])
def test_the_cap_counts_the_request_line_and_headers_to_the_byte(digits_server: Server, size: int, status: int) -> None:
    start, end = b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Pad: ", b"\r\n\r\n"
    request = start + b"p" * (size - len(start) - len(end)) + end
    assert len(request) == size
    assert send_and_read(digits_server.port, request).status == status


def test_a_head_under_the_cap_with_a_body_in_the_same_packet_is_served(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    """The cap counts the head only: a 60 KB header and a 1 MB body sent in one write are one valid request."""
    body = orjson.dumps({"instances": digits_rows[:1]})
    padding = b" " * ((1 << 20) - len(body))
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nX-Pad: "
        + b"p" * 60_000
        + b"\r\nContent-Length: %d\r\n\r\n" % (len(body) + len(padding))
        + body
        + padding
    )
    answer = send_and_read(digits_server.port, request)
    assert answer.status == 200, answer.body[:300]


def test_pipelined_requests_are_each_answered(digits_server: Server, digits_rows: list[list[float]]) -> None:
    """Requests sent back to back in one write: each head is counted on its own, each is answered in turn."""
    body = orjson.dumps([digits_rows[0]])
    post = b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    post += b"Content-Length: %d\r\n\r\n" % len(body) + body
    ping = b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 40_000 + b"\r\n\r\n"  # 3 of them: over 64 KiB
    with socket.create_connection(("127.0.0.1", digits_server.port), timeout=10) as sock:
        sock.sendall(ping + post + ping + ping + post)
        pending = bytearray()
        statuses = [read_answer(sock, pending).status for _ in range(5)]
    assert statuses == [200] * 5


def test_ping_stays_responsive_while_a_64_mb_header_is_sent(digits_server: Server) -> None:
    """Another client's huge header must not stall the worker (unlimited, it was parsed for seconds)."""
    outcome: dict[str, Any] = {}

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", digits_server.port), timeout=30) as sock:
            try:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Big: ")
                chunk = b"a" * (1 << 20)
                for _ in range(64):
                    sock.sendall(chunk)
                sock.sendall(b"\r\n\r\n")
                outcome["answer"] = read_answer(sock).status
            except OSError as exc:  # refused part-way: the server answered 431 and closed
                outcome["error"] = exc

    sender = threading.Thread(target=flood)
    latencies = []
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{digits_server.url}/ping").status_code == 200  # connected before the flood
        sender.start()
        until = time.monotonic() + 1.5
        while sender.is_alive() or time.monotonic() < until:
            started = time.monotonic()
            response = client.get(f"{digits_server.url}/ping")
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.01)
    sender.join(30)
    assert max(latencies) < 0.5, f"/ping took up to {max(latencies):.2f} s during the flood"
    assert outcome.get("answer", 431) == 431, outcome


# -- 2. every answer is JSON ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: test\r\nBad Header Name: x\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Length: 12abc\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    ids=["not-http", "space-in-header-name", "bad-content-length", "length-and-chunked"],
)
def test_a_malformed_request_is_answered_400_in_json(digits_server: Server, request_bytes: bytes) -> None:
    answer = send_and_read(digits_server.port, request_bytes)
    assert answer.status == 400
    error = answer.error()
    assert error["error"] == "BadRequest"
    assert error["message"].startswith("malformed HTTP request")


def test_a_websocket_upgrade_is_answered_as_plain_http(digits_server: Server) -> None:
    """The server speaks no WebSocket: an Upgrade is ignored (RFC 9110 allows it), the route answers."""
    answer = send_and_read(
        digits_server.port,
        b"GET /ping HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert answer.status == 200


def test_a_request_cut_off_by_the_graceful_timeout_is_answered_503_json(
    running_server: ServerFactory, behaviour_bundle: Path
) -> None:
    server = running_server(behaviour_bundle, env={"SHIPYARD_GRACEFUL_TIMEOUT": "1"})
    answer: dict[str, httpx.Response] = {}

    def slow() -> None:
        answer["r"] = httpx.post(
            f"{server.url}/invocations",
            content=orjson.dumps([[6.0, 1]]),  # 6 s in the model, longer than the grace time
            headers={"content-type": "application/json"},
            timeout=30,
        )

    in_flight = threading.Thread(target=slow)
    in_flight.start()
    time.sleep(0.8)  # in the model when SIGTERM arrives
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    in_flight.join(30)
    response = answer["r"]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "ShuttingDown"
    assert "SHIPYARD_GRACEFUL_TIMEOUT" in response.json()["message"]
    assert time.monotonic() - sent < 4  # at the grace time, not when the model is done


def test_an_application_that_fails_before_answering_gets_a_json_500() -> None:
    """uvicorn's fallback answer, through the protocol the worker uses, on a real socket (ServerApp itself
    answers every failure it sees, so an application that raises is a stand-in here)."""
    import asyncio

    import uvicorn

    from shipyard.config import ServerConfig
    from shipyard.serving.protocol import protocol_for

    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/silent":
                return  # returns without answering
            raise RuntimeError("a bug")

    port = free_port()
    config = uvicorn.Config(
        broken, host="127.0.0.1", port=port, http=protocol_for(ServerConfig()), ws="none", lifespan="off",
        log_config=None, loop="asyncio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for path in ("/raises", "/silent"):
            answer = send_and_read(port, b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path.encode())
            assert answer.status == 500
            assert answer.error()["error"] == "InternalError"
    finally:
        server.should_exit = True
        thread.join(10)


# -- 3. idle connections and the connection cap -----------------------------------------------------------
def test_a_connection_must_send_its_head_within_the_header_timeout(
    running_server: ServerFactory, digits_bundle: Path
) -> None:
    server = running_server(digits_bundle, env={"SHIPYARD_HEADER_TIMEOUT": "1"})
    address = ("127.0.0.1", server.port)
    silent = socket.create_connection(address)
    partial = socket.create_connection(address)
    dribbling = socket.create_connection(address)
    kept_alive = socket.create_connection(address)
    try:
        partial.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n")
        kept_alive.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_answer(kept_alive).status == 200
        started = time.monotonic()

        def dribble() -> None:  # a byte every 0.2 s: never idle, never done
            try:
                for byte in b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 100:
                    dribbling.send(bytes([byte]))
                    time.sleep(0.2)
            except OSError:  # the server answered 408 and closed
                pass

        thread = threading.Thread(target=dribble)
        thread.start()
        assert closed_within(silent, 5) == b""  # closed, without an answer: it asked nothing
        assert 0.7 < time.monotonic() - started < 3
        timed_out = read_answer(partial)
        assert timed_out.status == 408
        assert timed_out.error()["error"] == "RequestTimeout"
        dribbled = read_answer(dribbling)
        assert dribbled.status == 408
        assert time.monotonic() - started < 3
        thread.join(30)
        # A kept-alive connection idles for the keep-alive time (75 s), not the header timeout.
        time.sleep(1.5)
        kept_alive.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_answer(kept_alive).status == 200
    finally:
        for sock in (silent, partial, dribbling, kept_alive):
            sock.close()


def test_idle_sockets_over_the_open_file_limit_do_not_lock_clients_out(
    running_server: ServerFactory, digits_bundle: Path
) -> None:
    """nofile 256: 300 idle connections. New clients are answered (200, or 503 in JSON), never left waiting,
    and the idle ones are closed at the header timeout."""
    server = running_server(digits_bundle, env={"SHIPYARD_HEADER_TIMEOUT": "3"}, nofile=(256, 256))
    address = ("127.0.0.1", server.port)
    idle = [socket.create_connection(address) for _ in range(300)]
    try:
        time.sleep(0.5)
        opened = time.monotonic()
        statuses = []
        for _ in range(5):
            response = httpx.get(f"{server.url}/ping", timeout=5)
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"] == "Overloaded"
            else:
                assert response.status_code == 200
        # The connections over the cap were answered 503 and closed at once; the others at the timeout.
        closed = [closed_within(sock, max(0.1, opened + 6 - time.monotonic())) for sock in idle]
        assert all(received is not None for received in closed), "idle connections left open"
        refused = [received for received in closed if received]
        assert refused and all(b" 503 " in received.split(b"\r\n")[0] for received in refused)
        assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_the_soft_open_file_limit_is_raised_to_the_hard_limit(
    running_server: ServerFactory, digits_bundle: Path
) -> None:
    server = running_server(digits_bundle, nofile=(256, 4096))
    workers = server.worker_pids()
    assert workers
    for pid in workers:
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == ["4096", "4096"], line


# -- what the protocol was written against ---------------------------------------------------------------
UVICORN_SOURCES = {  # sha256 of each function's source, first 16 hex digits (uvicorn 0.54.0)
    "HttpToolsProtocol.on_headers_complete": "1ea8589acfad92d8",  # rewritten in EdgeProtocol
    "HttpToolsProtocol.on_body": "dba9c32aeba35b6a",  # rewritten
    "HttpToolsProtocol.on_message_complete": "1fbad42dc31fc01f",  # rewritten
    "HttpToolsProtocol.data_received": "010a7ae59a5d3b1a",  # rewritten
    "HttpToolsProtocol.shutdown": "d7351fa33f00d430",  # relied on: closes idle connections
    "HttpToolsProtocol.on_response_complete": "64e254f28e389e76",  # relied on: arms the keep-alive timer
    "RequestResponseCycle.run_asgi": "0f33f2449a444bc2",  # relied on: calls send_500_response
    "Server.shutdown": "9b33c50562992b1e",  # relied on: cancels the tasks at the grace time
}


def test_uvicorn_is_the_one_the_protocol_was_written_against() -> None:
    """serving/protocol.py rewrites some of uvicorn's protocol methods and relies on others: a new uvicorn
    that changed any of them needs protocol.py read against it again (then update these digests)."""
    import hashlib
    import inspect

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    from uvicorn.server import Server as UvicornServer

    owners = {"HttpToolsProtocol": HttpToolsProtocol, "RequestResponseCycle": RequestResponseCycle}
    owners["Server"] = UvicornServer
    changed = []
    for name, digest in UVICORN_SOURCES.items():
        owner, _, method = name.partition(".")
        source = inspect.getsource(getattr(owners[owner], method))
        if hashlib.sha256(source.encode()).hexdigest()[:16] != digest:
            changed.append(name)
    assert not changed, f"uvicorn changed {changed}: check serving/protocol.py against them"
