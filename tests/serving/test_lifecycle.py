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

from infra.server import BIN, ServerFactory, free_port, server_env

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


def test_bad_settings_exit_2_naming_the_variable(digits_bundle: Path) -> None:
    """A bad setting is a usage error (exit 2), as in `shipyard serve` and every other command."""
    result = subprocess.run(
        [str(BIN / "serve")],
        env=server_env({"SHIPYARD_MODEL_DIR": str(digits_bundle), "SAGEMAKER_MODEL_SERVER_WORKERS": "lots"}),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
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
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # A connection made in the instant SIGTERM arrives can be accepted into the backlog and then
            # closed unanswered when the listener closes (any server does this); the next one is refused.
            time.sleep(0.05)
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


def test_a_preloaded_model_loads_once_before_the_workers_fork(
    running_server: ServerFactory, behaviour_bundle: Path
) -> None:
    """A python-flavor bundle preloads by default: one load, in the supervisor; every worker ready at once."""
    server = running_server(behaviour_bundle, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    preloaded = server.wait_log(lambda e: e.get("message") == "model loaded before forking the workers")
    assert preloaded["pid"] == server.process.pid
    listening = server.wait_log(lambda e: e.get("message") == "listening")
    assert listening["preloaded"] is True
    lines = server.log_lines()
    assert lines.index(preloaded) < lines.index(listening)  # the port listens only once the model is in memory
    assert not any(e.get("message") == "model loaded" for e in lines)  # no worker loaded it again
    assert invoke(server.url, [[0, 3]]).json() == {"predictions": [6.0]}

    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_log(lambda e: e.get("message") == "worker died; replacing it")
    deadline = time.monotonic() + 20
    while (len(server.worker_pids()) < 2 or victim in server.worker_pids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.worker_pids()) == 2
    statuses = {invoke(server.url, [[0, 1]]).status_code for _ in range(20)}  # a new connection each time
    assert statuses == {200}
    assert not any(e.get("message") == "model loaded" for e in server.log_lines())  # the new worker inherited it


def test_preload_off_loads_the_model_in_every_worker(running_server: ServerFactory, behaviour_bundle: Path) -> None:
    server = running_server(behaviour_bundle, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SHIPYARD_PRELOAD": "off"})
    deadline = time.monotonic() + 20
    while len([e for e in server.log_lines() if e.get("message") == "model loaded"]) < 2:
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.05)
    loads = [e for e in server.log_lines() if e.get("message") == "model loaded"]
    assert len({e["pid"] for e in loads}) == 2 and server.process.pid not in {e["pid"] for e in loads}
    assert not any(e.get("message") == "model loaded before forking the workers" for e in server.log_lines())


def test_connections_are_refused_not_left_hanging_while_a_model_preloads(
    slow_loading_bundle: Path, tmp_path: Path
) -> None:
    """SHIPYARD_PRELOAD=on with a 3 s model_fn: the port refuses connections until the model is in memory."""

    port = free_port()
    settings = {
        "SHIPYARD_MODEL_DIR": str(slow_loading_bundle),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SHIPYARD_PRELOAD": "on",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "serve")], env=server_env(settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        refused = 0
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()[-3000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5)
            except httpx.ConnectError:
                refused += 1
                time.sleep(0.05)
                continue
            # Whatever answered, the model was already loaded: the line is written before listen().
            assert "model loaded before forking the workers" in log_path.read_text()
            if response.status_code == 200:
                break
            time.sleep(0.05)
        assert refused > 0  # the 3 s load was seen from outside as refused connections
        assert invoke(f"http://127.0.0.1:{port}", [1, 2]).json() == [10, 20]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_a_preload_that_fails_exits_3_without_forking(failing_load_bundle: Path) -> None:
    result = subprocess.run(
        [str(BIN / "serve")],
        env=server_env(
            {
                "SHIPYARD_MODEL_DIR": str(failing_load_bundle),
                "SAGEMAKER_BIND_TO_PORT": "0",
                "SHIPYARD_PRELOAD": "on",
                "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    lines = [orjson.loads(line) for line in result.stderr.splitlines() + result.stdout.splitlines() if line[:1] == "{"]
    failed = next(e for e in lines if e.get("message", "").startswith("loading the model failed"))
    assert "weights file model.pth is corrupt" in failed["message"]
    assert not any(e.get("message", "").startswith("Started server process") for e in lines)  # no worker forked
    assert not any(e.get("message") == "listening" for e in lines)


def test_sigterm_during_a_preload_exits_at_once(slow_loading_bundle: Path) -> None:
    """SageMaker may stop a container that is still loading: a 3 s model_fn must not delay the exit."""
    settings = {
        "SHIPYARD_MODEL_DIR": str(slow_loading_bundle),
        "SAGEMAKER_BIND_TO_PORT": "0",
        "SHIPYARD_PRELOAD": "on",
    }
    process = subprocess.Popen(
        [str(BIN / "serve")], env=server_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "loading the model before forking the workers" in line:
            break
    time.sleep(0.5)  # model_fn is sleeping now
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert time.monotonic() - sent < 2.5  # not after the rest of the 3 s load
    rest = process.stdout.read()
    assert "signal SIGTERM while loading the model: exiting" in rest
    assert "listening" not in rest
