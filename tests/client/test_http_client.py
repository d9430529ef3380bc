"""shipyard.client.http: invoke and wait_ready against the real server, and their errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from infra.server import Server
from shipyard.client.http import content_type_for, invoke, wait_ready
from shipyard.errors import InvokeError

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    listener.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("suffix", ["", "/", "/invocations", "/ping"])
def test_invoke(digits_server: Server, digits_rows: list[list[float]], suffix: str) -> None:
    answer = invoke(digits_server.url + suffix, orjson.dumps(digits_rows[:2]), accept="application/jsonlines")
    assert answer.status == 200
    assert answer.content_type == "application/jsonlines"
    assert len(answer.body.splitlines()) == 2
    assert answer.seconds > 0


def test_invoke_without_a_scheme(digits_server: Server, digits_rows: list[list[float]], digits_bundle: Path) -> None:
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    answer = invoke(f"127.0.0.1:{digits_server.port}", orjson.dumps(digits_rows))
    assert answer.json() == {"predictions": expected}


def test_invoke_sends_extra_headers(digits_server: Server, digits_rows: list[list[float]]) -> None:
    answer = invoke(
        digits_server.url,
        "\n".join(",".join(map(str, row)) for row in digits_rows).encode(),
        content_type="text/csv",
        headers={"x-amzn-sagemaker-inference-id": "client-test-1"},
    )
    assert answer.content_type == "text/csv"
    digits_server.wait_log(lambda e: e.get("inference_id") == "client-test-1")


def test_error_answers_carry_status_and_message(digits_server: Server) -> None:
    with pytest.raises(InvokeError, match="400 Bad Request: expected 64 features per row, got 2") as info:
        invoke(digits_server.url, b"[[1, 2]]")
    assert info.value.status == 400
    assert info.value.exit_code == 4
    with pytest.raises(InvokeError, match="415 Unsupported Media Type") as info:
        invoke(digits_server.url, b"x", content_type="text/plain")
    assert info.value.status == 415


def test_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(InvokeError, match=f"cannot reach http://127.0.0.1:{port}"):
        invoke(f"http://127.0.0.1:{port}", b"[]")


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:port", "ftp://example"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvokeError, match=r"not a valid URL|unsupported protocol"):
        invoke(url, b"[]")


def test_no_answer_in_time(silent_port: int) -> None:
    with pytest.raises(InvokeError, match=r"no answer from .* within 0\.5 s"):
        invoke(f"http://127.0.0.1:{silent_port}", b"[]", timeout_s=0.5)


def test_wait_ready(digits_server: Server) -> None:
    assert wait_ready(digits_server.url, timeout=10) >= 0


def test_wait_ready_times_out() -> None:
    with pytest.raises(InvokeError, match=r"was not ready within 0\.3 s \(last: .*\)"):
        wait_ready(f"http://127.0.0.1:{closed_port()}", timeout=0.3)
    with pytest.raises(InvokeError, match="not a valid URL"):
        wait_ready("http://[::1", timeout=0.3)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("rows.json", "application/json"),
        ("rows.CSV", "text/csv"),
        ("a.npy", "application/x-npy"),
        ("a.jsonl", "application/jsonlines"),
        ("a.ndjson", "application/jsonlines"),
        ("a.txt", "application/json"),
        ("-", "application/json"),
        (None, "application/json"),
    ],
)
def test_content_type_for(path: str | None, content_type: str) -> None:
    assert content_type_for(path) == content_type
