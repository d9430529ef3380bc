"""The local front over real HTTP: the real ``python -m shipyard.deploy.front`` in front of the real server."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

import shipyard
from infra.server import Server, ServerFactory, free_port
from shipyard.deploy.expose import API_PAYLOAD_LIMIT
from shipyard.deploy.front import is_front, new_api_key, stop_front, write_key_file

pytestmark = pytest.mark.integration

KEY = new_api_key()


class Fronts:
    """Starts fronts (``python -m shipyard.deploy.front``) and always ends them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def __call__(self, upstream: str, *args: str, key: str | None = KEY, env: dict[str, str] | None = None) -> str:
        port = free_port()
        command = [sys.executable, "-m", "shipyard.deploy.front", "--upstream", upstream, "--port", str(port)]
        if key is not None:
            key_file = self.directory / f"key-{port}"
            write_key_file(key_file, key)
            command += ["--auth", "api-key", "--key-file", str(key_file)]
        else:
            command += ["--auth", "none"]
        log = (self.directory / f"front-{port}.log").open("wb")
        process = subprocess.Popen(
            [*command, *args], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.processes.append(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, (self.directory / f"front-{port}.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                return f"http://127.0.0.1:{port}"
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the front did not answer")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


@pytest.fixture
def fronts(tmp_path: Path) -> Iterator[Fronts]:
    started = Fronts(tmp_path)
    yield started
    started.close()


def post(
    url: str, body: bytes, content_type: str = "application/json", key: str | None = KEY, **headers: str
) -> httpx.Response:
    sent = {"content-type": content_type, **({"x-api-key": key} if key else {}), **headers}
    return httpx.post(f"{url}/predict", content=body, headers=sent, timeout=30)


def assert_gateway_error(response: httpx.Response, status: int, message: str, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"message": message}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-errortype"] == error_type
    assert response.headers["x-amzn-requestid"]


def test_keys_missing_wrong_and_right(fronts: Fronts, digits_server: Server, digits_rows: list[list[float]]) -> None:
    front = fronts(digits_server.url)
    body = orjson.dumps({"instances": digits_rows[:2]})
    assert_gateway_error(post(front, body, key=None), 403, "Forbidden", "ForbiddenException")
    assert_gateway_error(
        post(front, body, key=KEY[:-1] + ("a" if KEY[-1] != "a" else "b")), 403, "Forbidden", "ForbiddenException"
    )
    right = post(front, body)
    assert (
        right.status_code == 200
        and right.content == post(digits_server.url.replace("", ""), b"", key=None).content[:0] + right.content
    )
    direct = httpx.post(f"{digits_server.url}/invocations", content=body, headers={"content-type": "application/json"})
    assert right.content == direct.content and right.headers["x-amzn-requestid"]


def test_wrong_path_or_method_is_missing_authentication_token(fronts: Fronts, digits_server: Server) -> None:
    front = fronts(digits_server.url)
    missing = ("Missing Authentication Token", "MissingAuthenticationTokenException")
    assert_gateway_error(httpx.get(f"{front}/predict", headers={"x-api-key": KEY}), 403, *missing)
    assert_gateway_error(httpx.post(f"{front}/other", headers={"x-api-key": KEY}), 403, *missing)
    assert_gateway_error(httpx.post(f"{front}/invocations", headers={"x-api-key": KEY}), 403, *missing)


def test_burst_then_429_with_retry_after_then_refill(
    fronts: Fronts, digits_server: Server, digits_rows: list[list[float]]
) -> None:
    front = fronts(digits_server.url, "--rate", "0.5", "--burst", "3")  # a token every 2 s
    body = orjson.dumps({"instances": digits_rows[:1]})
    headers = {"content-type": "application/json", "x-api-key": KEY}
    with httpx.Client(base_url=front, headers=headers, timeout=30) as client:
        assert [client.post("/predict", content=body).status_code for _ in range(3)] == [200, 200, 200]
        throttled = client.post("/predict", content=body)
        assert_gateway_error(throttled, 429, "Too Many Requests", "TooManyRequestsException")
        retry_after = int(throttled.headers["retry-after"])
        assert retry_after in (1, 2)  # under 2 s until the next token, rounded up
        time.sleep(retry_after)
        assert client.post("/predict", content=body).status_code == 200  # refilled as promised
        assert client.post("/predict", content=body).status_code == 429


def test_quota_limit_exceeded_after_n(fronts: Fronts, digits_server: Server, digits_rows: list[list[float]]) -> None:
    front = fronts(digits_server.url, "--quota", "3/day")
    body = orjson.dumps({"instances": digits_rows[:1]})
    assert [post(front, body).status_code for _ in range(3)] == [200, 200, 200]
    assert_gateway_error(post(front, body), 429, "Limit Exceeded", "LimitExceededException")


def invocations(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("shipyard_requests_total{") and 'route="invocations"' in line
    )


def test_payload_over_10_mb_is_413_and_not_forwarded(fronts: Fronts, digits_server: Server) -> None:
    front = fronts(digits_server.url)
    before = invocations(digits_server)
    too_long = post(front, b"x" * (API_PAYLOAD_LIMIT + 1))
    assert_gateway_error(too_long, 413, "Request Too Long", "RequestTooLongException")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is counted
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    streamed = httpx.post(
        f"{front}/predict", content=chunks(), headers={"x-api-key": KEY, "content-type": "application/json"}, timeout=30
    )
    assert_gateway_error(streamed, 413, "Request Too Long", "RequestTooLongException")
    assert invocations(digits_server) == before


def bodies(rows: list[list[float]]) -> dict[str, bytes]:
    array = np.asarray(rows[:3], dtype=np.float64)
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, array)
    np.savez(npz, array)
    return {
        "application/json": orjson.dumps({"instances": rows[:3]}),
        "application/jsonlines": b"\n".join(orjson.dumps(row) for row in rows[:3]),
        "text/csv": "\n".join(",".join(str(v) for v in row) for row in rows[:3]).encode(),
        "application/x-npy": npy.getvalue(),
        "application/x-npz": npz.getvalue(),
    }


@pytest.mark.parametrize("accept", [None, "application/json", "text/csv", "application/x-npy", "application/jsonlines"])
def test_every_codec_passes_through_byte_identical(
    fronts: Fronts, digits_server: Server, digits_rows: list[list[float]], accept: str | None
) -> None:
    front = fronts(digits_server.url, key=None)
    for content_type, body in bodies(digits_rows).items():
        headers = {"content-type": content_type, **({"accept": accept} if accept else {})}
        direct = httpx.post(f"{digits_server.url}/invocations", content=body, headers=headers, timeout=30)
        through = httpx.post(f"{front}/predict", content=body, headers=headers, timeout=30)
        assert direct.status_code == 200, (content_type, direct.text)
        assert (through.status_code, through.content) == (direct.status_code, direct.content), content_type
        assert through.headers["content-type"] == direct.headers["content-type"]


def make_steered() -> Callable[[np.ndarray], np.ndarray]:
    """Column 0 steers: 1 raises (a 5xx), 2 sleeps column 1's seconds; else 2·x (a closure: pickled by value)."""

    def steered(batch: np.ndarray) -> np.ndarray:
        import time as clock

        batch = np.asarray(batch, dtype=np.float64)
        if (batch[:, 0] == 1).any():
            raise RuntimeError("steered to fail")
        if (batch[:, 0] == 2).any():
            clock.sleep(float(batch[:, 1].max()))
        return batch[:, 1] * 2

    return steered


@pytest.fixture(scope="module")
def steered_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("steered") / "bundle"
    shipyard.save(make_steered(), path, example=np.zeros((2, 2)), feature_names=["kind", "x"], name="steered")
    factory = ServerFactory(tmp_path_factory.mktemp("steered-server"))
    yield factory(path)
    factory.close()


def test_container_4xx_and_5xx_pass_with_their_status_and_body(fronts: Fronts, steered_server: Server) -> None:
    front = fronts(steered_server.url, key=None)
    for body in (b"{not json", orjson.dumps([[1, 0]])):
        direct = httpx.post(
            f"{steered_server.url}/invocations", content=body, headers={"content-type": "application/json"}
        )
        through = httpx.post(f"{front}/predict", content=body, headers={"content-type": "application/json"})
        assert direct.status_code >= 400
        assert (through.status_code, through.content, through.headers["content-type"]) == (
            direct.status_code,
            direct.content,
            direct.headers["content-type"],
        )
    statuses = {
        httpx.post(f"{front}/predict", content=body, headers={"content-type": "application/json"}).status_code // 100
        for body in (b"{not json", orjson.dumps([[1, 0]]))
    }
    assert statuses == {4, 5}


def test_slow_upstream_is_504_and_no_upstream_is_502(fronts: Fronts, steered_server: Server) -> None:
    front = fronts(steered_server.url, key=None, env={"SHIPYARD_FRONT_TIMEOUT_S": "1"})
    started = time.monotonic()
    slow = httpx.post(
        f"{front}/predict", content=orjson.dumps([[2, 2.5]]), headers={"content-type": "application/json"}, timeout=30
    )
    assert_gateway_error(slow, 504, "Endpoint request timed out", "InternalServerErrorException")
    assert time.monotonic() - started < 2.5
    nowhere = fronts(f"http://127.0.0.1:{free_port()}", key=None)
    gone = httpx.post(f"{nowhere}/predict", content=b"[[0, 1]]", headers={"content-type": "application/json"})
    assert_gateway_error(gone, 502, "Internal server error", "InternalServerErrorException")


def test_stop_front_checks_the_pid_is_that_front(tmp_path: Path, digits_server: Server) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not is_front(other.pid) and not stop_front(other.pid)
        assert other.poll() is None  # not ours to stop
    finally:
        other.kill()
        other.wait()
    from shipyard.deploy.expose import ExposeOptions
    from shipyard.deploy.front import start_front

    front = start_front(digits_server.url, ExposeOptions(auth="none"), log_path=tmp_path / "front.log")
    try:
        assert is_front(front.pid, front.port) and not is_front(front.pid, front.port + 1)
    finally:
        assert stop_front(front.pid, front.port)
    assert not is_front(front.pid) and not stop_front(front.pid)
    assert '"status":403' in (tmp_path / "front.log").read_text()  # one line per request (the readiness probe)
