"""The server's processes: loading, failing to load, SIGTERM drain, a killed worker replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from infra.server import BIN, ServerFactory, server_env

pytestmark = pytest.mark.integration


def invoke(url: str, rows: object, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{url}/invocations", content=orjson.dumps(rows), headers={"content-type": "application/json"}, timeout=timeout
    )


def test_ping_is_503_while_loading_then_200(running_server: ServerFactory, slow_loading_bundle: Path) -> None:
    server = running_server(slow_loading_bundle, wait=False)
    response = httpx.get(f"{server.url}/ping", timeout=5)
    assert response.status_code == 503
    assert response.json() == {"status": "loading"}
    early = invoke(server.url, [1, 2])
    assert early.status_code == 503
    assert early.headers["retry-after"] == "1"
    assert early.json() == {"error": "ModelNotReady", "message": "the model is still loading"}
    server.wait_ready(timeout=30)
    assert invoke(server.url, [1, 2]).json() == [10, 20]
    loaded = server.wait_log(lambda e: e.get("message") == "model loaded")
    assert loaded["load_seconds"] >= 3


def test_a_model_that_fails_to_load_stops_the_server_with_exit_3(
    running_server: ServerFactory, failing_load_bundle: Path
) -> None:
    server = running_server(failing_load_bundle, wait=False, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    assert server.process.wait(30) == 3
    failed = server.wait_log(lambda e: e.get("message", "").startswith("loading the model failed"))
    assert failed["level"] == "ERROR"
    assert "weights file model.pth is corrupt" in failed["message"]
    assert "RuntimeError" in failed["traceback"]
    server.wait_log(lambda e: "could not load the model; stopping" in e.get("message", ""))


def test_not_a_bundle_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [str(BIN / "serve")],
        env=server_env({"SHIPYARD_MODEL_DIR": str(empty), "SAGEMAKER_BIND_TO_PORT": "0"}),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    line = orjson.loads(result.stdout.splitlines()[-1])
    assert line["level"] == "ERROR"
    assert "is not a model bundle" in line["message"]
    assert "code/inference.py" in line["message"]


def test_bad_settings_exit_1_naming_the_variable(digits_bundle: Path) -> None:
    result = subprocess.run(
        [str(BIN / "serve")],
        env=server_env({"SHIPYARD_MODEL_DIR": str(digits_bundle), "SAGEMAKER_MODEL_SERVER_WORKERS": "lots"}),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert b"SAGEMAKER_MODEL_SERVER_WORKERS='lots' is not an integer" in result.stdout + result.stderr


def test_sigterm_drains_in_flight_requests(running_server: ServerFactory, behaviour_bundle: Path) -> None:
    server = running_server(behaviour_bundle, env={"SHIPYARD_GRACEFUL_TIMEOUT": "10"})
    answer: dict[str, httpx.Response] = {}
    in_flight = threading.Thread(target=lambda: answer.setdefault("r", invoke(server.url, [[5.0, 5]])))
    in_flight.start()
    time.sleep(0.8)  # the request is in the model when SIGTERM arrives
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    refused = False
    while in_flight.is_alive() and not refused:  # new connections are refused while the old one drains
        try:
            httpx.get(f"{server.url}/ping", timeout=2)
            time.sleep(0.1)
        except httpx.ConnectError:
            refused = True
    assert refused and in_flight.is_alive()
    in_flight.join(30)
    assert answer["r"].status_code == 200
    assert answer["r"].json() == {"predictions": [10.0]}
    assert server.process.wait(15) == 0
    assert time.monotonic() - sent < 10 + 5  # within the grace time
    server.wait_log(lambda e: e.get("message") == "signal SIGTERM: draining")
    drained = [e for e in server.log_lines() if e.get("message") == "signal SIGTERM: draining"]
    assert [e["pid"] for e in drained] == [server.process.pid]  # the supervisor's line, not the workers'
    assert any(e.get("message", "").startswith("Finished server process") for e in server.log_lines())


def test_a_killed_worker_is_replaced(running_server: ServerFactory, behaviour_bundle: Path) -> None:
    server = running_server(behaviour_bundle, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    deadline = time.monotonic() + 20
    while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = server.worker_pids()
    assert len(workers) == 2
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)

    # The survivor keeps answering while the replacement starts.
    for i in range(20):
        response = invoke(server.url, [[0, i]], timeout=10)
        assert response.status_code == 200
        assert response.json() == {"predictions": [2.0 * i]}

    died = server.wait_log(lambda e: e.get("message") == "worker died; replacing it")
    assert died["exit"] == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = server.worker_pids()
        if len(current) == 2 and victim not in current:
            break
        time.sleep(0.1)
    current = server.worker_pids()
    assert len(current) == 2 and victim not in current and workers[1] in current
    server.wait_ready(timeout=20)
    assert server.process.poll() is None


def test_ping_waits_for_every_worker(running_server: ServerFactory, uneven_loading_bundle: Path) -> None:
    """/ping must not say 200 while a sibling worker would still answer 503 to an invocation."""
    server = running_server(uneven_loading_bundle, wait=False, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    server.wait_log(lambda e: e.get("message") == "model loaded")  # the quick worker is ready
    assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 503  # but the slow one is not
    server.wait_ready(timeout=30)
    statuses = {invoke(server.url, [1, 2]).status_code for _ in range(30)}  # a new connection each time
    assert statuses == {200}
