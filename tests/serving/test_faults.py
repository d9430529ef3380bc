"""The server under faults: a model that crashes, leaks, hangs or floods stdout, and a supervisor killed.

Every test starts the real server (``serve``, real processes and sockets) with a model steered by its
input, and checks what the clients got: no request lost silently, no lockup, the endpoint back at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

import shipyard
from infra.cgroup import MemoryCgroup, memory_cgroup
from infra.server import BIN, Server, ServerFactory, descendants, free_port, server_env

NORMAL, SEGFAULT, EXIT, LEAK, HANG, SLOW, PRINT = range(7)


def make_faulty() -> Callable[[np.ndarray], np.ndarray]:
    """A model steered by column ``kind`` of each row: 0 answers 2·x, 1 segfaults, 2 calls ``os._exit``,
    3 allocates until the OOM killer comes, 4 never returns, 5 computes for x seconds, 6 prints 4 MB (per row)."""

    def faulty(batch: np.ndarray) -> np.ndarray:
        import ctypes
        import os
        import sys
        import time

        batch = np.asarray(batch, dtype=np.float64)
        kinds = set(batch[:, 0].astype(int).tolist())
        if 1 in kinds:
            ctypes.string_at(0)  # a read of address 0: SIGSEGV in native code
        if 2 in kinds:
            os._exit(7)
        if 3 in kinds:
            hoard = []
            while True:
                hoard.append(np.ones(16 << 20, dtype=np.uint8))  # 16 MB at a time, touched
        if 4 in kinds:
            time.sleep(3600)
        if 5 in kinds:
            time.sleep(float(batch[:, 1].max()))
        for _ in range(int((batch[:, 0] == 6).sum())):  # once per such row: requests may share a batch
            sys.stdout.write("x" * (4 << 20) + "\n")
            sys.stdout.flush()
        return batch[:, 1] * 2

    return faulty


@pytest.fixture(scope="module")
def faulty_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faulty") / "bundle"
    shipyard.save(make_faulty(), path, example=np.zeros((2, 2)), feature_names=["kind", "x"], name="faulty")
    return path


def call(url: str, kind: int, x: float, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(f"{url}/invocations", json=[[kind, x]], timeout=timeout)


def metric(url: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + (("{" + labels) if labels else "")) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if labels or head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def batch_behind_a_blocker(url: str, requests: list[tuple[int, float]]) -> list[httpx.Response | BaseException]:
    """Send a 0.6 s call, then ``requests`` at once while it runs: they queue and go to the model as one batch."""
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        blocker = pool.submit(call, url, SLOW, 0.6)
        time.sleep(0.25)
        futures = [pool.submit(call, url, kind, x) for kind, x in requests]
        results: list[httpx.Response | BaseException] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(exc)
        assert blocker.result().status_code == 200
    return results


@pytest.mark.parametrize(("kind", "words"), [(SEGFAULT, "SIGSEGV"), (EXIT, "exited with code 7")])
def test_a_dying_model_costs_only_its_own_request(
    running_server: ServerFactory, faulty_bundle: Path, kind: int, words: str
) -> None:
    """12 neighbours stacked in one batch with a request that kills the model: all 12 answered right."""
    server = running_server(faulty_bundle)
    worker = server.worker_pids()[0]
    requests = [(NORMAL, float(i)) for i in range(6)] + [(kind, 0.0)] + [(NORMAL, float(i)) for i in range(6, 12)]
    results = batch_behind_a_blocker(server.url, requests)

    for (wanted_kind, x), result in zip(requests, results, strict=True):
        assert isinstance(result, httpx.Response), f"request {(wanted_kind, x)} lost: {result!r}"
        if wanted_kind == NORMAL:
            assert result.status_code == 200 and result.json() == {"predictions": [2 * x]}
        else:
            assert result.status_code == 500
            assert result.json()["error"] == "ModelCrashed" and words in result.json()["message"]
    assert server.worker_pids() == [worker]  # the HTTP side never restarted
    assert call(server.url, NORMAL, 4).json() == {"predictions": [8.0]}
    assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 200
    assert metric(server.url, "shipyard_model_restarts_total") >= 1


def test_keep_alive_connections_survive_a_model_crash(running_server: ServerFactory, faulty_bundle: Path) -> None:
    server = running_server(faulty_bundle)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/invocations", json=[[NORMAL, 1]]).status_code == 200
        crashed = client.post("/invocations", json=[[SEGFAULT, 0]])
        assert crashed.status_code == 500
        assert client.post("/invocations", json=[[NORMAL, 2]]).json() == {"predictions": [4.0]}
        assert crashed.headers.get("connection", "keep-alive") != "close"


def test_restarts_stay_quick_after_ten_crashes(running_server: ServerFactory, faulty_bundle: Path) -> None:
    """Ten poison requests in a row: each costs itself only, and the model is back within about a second."""
    server = running_server(faulty_bundle)
    recoveries = []
    for _ in range(10):
        assert call(server.url, SEGFAULT, 0).status_code == 500
        started = time.monotonic()
        assert call(server.url, NORMAL, 3).json() == {"predictions": [6.0]}
        recoveries.append(time.monotonic() - started)
    assert max(recoveries) < 1.5 + 1.0, recoveries  # the backoff is capped at 1 s (it was 5.1 s)
    assert metric(server.url, "shipyard_model_restarts_total", 'reason="crashed"') == 10


def test_a_call_that_overruns_gets_its_process_replaced(running_server: ServerFactory, faulty_bundle: Path) -> None:
    server = running_server(faulty_bundle, env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1", "SHIPYARD_OVERRUN_GRACE": "2"})
    with ThreadPoolExecutor(1) as pool:
        hung = pool.submit(call, server.url, HANG, 0)
        time.sleep(1.5)  # past the timeout, within the grace: no worker can take work
        ping = httpx.get(f"{server.url}/ping", timeout=5)
        assert ping.status_code == 503 and ping.json() == {"status": "unavailable"}
        assert metric(server.url, "shipyard_workers_available") == 0
        assert hung.result().status_code == 504
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/ping", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.05)
    answers = [call(server.url, NORMAL, i, timeout=5) for i in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert metric(server.url, "shipyard_model_restarts_total", 'reason="overran"') == 1
    assert metric(server.url, "shipyard_workers_available") == 1
    assert any("overran its time limit" in line.get("message", "") for line in server.log_lines())


def test_processes_offer_themselves_to_the_oom_killer_before_the_supervisor(
    running_server: ServerFactory, faulty_bundle: Path
) -> None:
    server = running_server(faulty_bundle)
    worker = server.worker_pids()[0]
    model = descendants(worker)
    assert len(model) == 1
    score = {pid: int(Path(f"/proc/{pid}/oom_score_adj").read_text()) for pid in (server.process.pid, worker, *model)}
    assert score[server.process.pid] == 0
    assert score[worker] == 500
    assert score[model[0]] == 1000


def test_an_oom_kill_replaces_the_model_and_the_supervisor_survives(faulty_bundle: Path, tmp_path: Path) -> None:
    """Under a 600 MB memory limit, five leaking requests: each is answered 500 "out of memory", the
    supervisor and the worker never die, and the next request is answered."""
    with memory_cgroup(600 << 20) as group:
        server = _start_in(group, faulty_bundle, tmp_path)
        try:
            supervisor, worker = server.process.pid, server.worker_pids()[0]
            for _ in range(5):
                answer = call(server.url, LEAK, 0, timeout=60)
                assert answer.status_code == 500, answer.text
                assert "out of memory" in answer.json()["message"]
                assert call(server.url, NORMAL, 5).json() == {"predictions": [10.0]}
            assert server.process.poll() is None and server.worker_pids() == [worker]
            assert group.oom_kills() >= 5
            killed = [line for line in server.log_lines() if line.get("message") == "worker 0 killed: out of memory"]
            assert len(killed) == 5
            assert metric(server.url, "shipyard_model_restarts_total", 'reason="out_of_memory"') == 5
            assert supervisor == server.process.pid
        finally:
            server.stop()


def _start_in(group: MemoryCgroup, bundle: Path, tmp_path: Path) -> Server:
    from infra.server import _wait_listening

    log = (tmp_path / "server.log").open("wb")
    settings = {
        "SHIPYARD_MODEL_DIR": str(bundle),
        "SAGEMAKER_BIND_TO_PORT": "0",
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    }
    process = subprocess.Popen(
        [str(BIN / "serve")],
        env=server_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=group.enter,
    )
    server = Server(process, tmp_path / "server.log", _log=log)
    server.port = int(_wait_listening(server, 60)["port"])
    server.wait_ready(60)
    return server


def test_a_killed_supervisor_takes_its_workers_along(running_server: ServerFactory, faulty_bundle: Path) -> None:
    server = running_server(faulty_bundle, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    deadline = time.monotonic() + 20
    while len(server.worker_pids()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    everyone = descendants(server.process.pid)
    assert len(everyone) == 4  # two workers, each with its model process
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in everyone):
        assert time.monotonic() < deadline, [pid for pid in everyone if _alive(pid)]
        time.sleep(0.05)
    with socket.socket() as again:  # the port is free for a restarted server
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_stdout_nobody_reads_never_stalls_serving(faulty_bundle: Path, tmp_path: Path) -> None:
    """stdout is a pipe nobody reads (a stuck log shipper): requests and /ping still answer, the lines that
    did not fit are counted in /metrics, and said once the pipe drains."""
    process, url = _start_piped(faulty_bundle)
    try:
        _wait_ping(url, process)
        attributes = {"X-Amzn-SageMaker-Custom-Attributes": "a" * 1000}  # access lines of about 1.1 KB
        with httpx.Client(base_url=url, timeout=10, headers=attributes) as client:
            for i in range(3000):  # 3.3 MB of access lines: a 64 KB pipe plus the 1 MB queue hold a third
                assert client.post("/invocations", json=[[NORMAL, i]]).status_code == 200
            assert client.get("/ping").status_code == 200
        dropped = metric(url, "shipyard_log_lines_dropped_total")
        assert dropped > 0
        assert process.stdout is not None
        lines: list[Any] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        deadline = time.monotonic() + 15
        while not any(b"log lines were dropped" in line for line in lines):
            assert time.monotonic() < deadline, lines[-5:]
            httpx.get(f"{url}/ping", timeout=5)  # something to write, once the pipe drains
            time.sleep(0.1)
        report = orjson.loads(next(line for line in lines if b"log lines were dropped" in line))
        assert report["dropped"] >= 1
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _wait_ping(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("server not ready")


def test_a_handler_printing_megabytes_never_splits_a_log_line(faulty_bundle: Path) -> None:
    """stdout is a pipe (as under Docker or a log shipper): writes to it over 4 KB are not atomic, so two
    processes writing at once interleave. 20 requests print 4 MB each while 20 others are logged."""
    process, url = _start_piped(faulty_bundle, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    received = bytearray()
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(
        target=lambda: [received.extend(chunk) for chunk in iter(lambda: stdout.read1(1 << 16), b"")]
    )
    reader.daemon = True
    reader.start()
    try:
        _wait_ping(url, process)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: call(url, PRINT if i % 2 else NORMAL, i), range(40)))
        assert all(answer.status_code == 200 for answer in answers)
        deadline = time.monotonic() + 60
        # the prints come through the model process's pipe, the access lines straight from the worker: wait for
        # both (counting in place: copying 80 MB per look would starve the reader thread on a busy machine)
        while received.count(b"x") < 20 * (4 << 20) or received.count(b'"path":"/invocations"') < 40:
            assert time.monotonic() < deadline, metric(url, "shipyard_log_lines_dropped_total")
            time.sleep(0.2)
        time.sleep(0.5)
        lines = bytes(received).split(b"\n")
        access = [line for line in lines if b'"path":"/invocations"' in line]
        printed = sum(line.count(b"x") for line in lines if line.startswith(b"x"))
        intact = [line for line in access if _json(line)]
        assert len(access) == 40 and len(intact) == 40  # every access line whole, on a line of its own
        assert printed == 20 * (4 << 20)  # and nothing of the prints lost
        assert metric(url, "shipyard_log_lines_dropped_total") == 0
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _start_piped(bundle: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``serve`` with its stdout and stderr a pipe this test reads (or does not); its process and URL."""
    port = free_port()
    settings = {
        "SHIPYARD_MODEL_DIR": str(bundle),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        **(env or {}),
    }
    process = subprocess.Popen(
        [str(BIN / "serve")], env=server_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def _json(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def test_an_invalid_content_type_from_output_fn_is_a_json_500(running_server: ServerFactory, tmp_path: Path) -> None:
    """A handler's output_fn answering a Content-Type with a newline: a JSON 500, not a dropped connection."""
    bundle = tmp_path / "bad-type"
    (bundle / "code").mkdir(parents=True)
    (bundle / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    return None\n"
        "def transform_fn(model, body, content_type, accept):\n    return 'x', 'text/plain\\r\\nX-Evil: 1'\n"
    )
    server = running_server(bundle)
    answer = httpx.post(f"{server.url}/invocations", content=b"{}", timeout=30)
    assert answer.status_code == 500 and "x-evil" not in answer.headers
    assert answer.json()["error"] == "ModelError" and "invalid Content-Type" in answer.json()["message"]
    assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 200
