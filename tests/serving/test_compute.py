"""Model compute behind the real server: 500 with the model's message, error isolation inside a batch,
503 when the queue is full, 504 on time-out, and /ping staying fast while a long prediction runs."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from infra.server import Server, ServerFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("compute-servers"))
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def server(servers: ServerFactory, behaviour_bundle: Path) -> Server:
    return servers(behaviour_bundle, env={"OPENBLAS_NUM_THREADS": "1"})


def invoke(server: Server, rows: object, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{server.url}/invocations",
        content=orjson.dumps(rows),
        headers={"content-type": "application/json"},
        timeout=timeout,
    )


def test_predictions(server: Server) -> None:
    response = invoke(server, [[0, 1], [0, 2.5]])
    assert response.status_code == 200
    assert response.json() == {"predictions": [2.0, 5.0]}


def test_records_by_feature_name(server: Server) -> None:
    response = invoke(server, [{"x": 3, "seconds": 0}, {"seconds": 0, "x": 4, "ignored": "yes"}])
    assert response.status_code == 200
    assert response.json() == {"predictions": [6.0, 8.0]}
    response = invoke(server, {"x": 3})
    assert response.status_code == 400
    assert response.json()["message"] == "record 0 is missing field 'seconds'"


def test_model_exception_is_500_with_its_message(server: Server) -> None:
    response = invoke(server, [[0, -7]], timeout=30)
    assert response.status_code == 500
    assert response.json() == {"error": "ModelError", "message": "the model raised ValueError: negative input -7"}
    entry = server.wait_log(lambda e: e.get("level") == "ERROR" and "negative input -7" in e.get("message", ""))
    assert "Traceback" in entry["traceback"]  # the traceback goes to the log
    assert "ValueError: negative input -7" in entry["traceback"]
    assert invoke(server, [[0, 1]]).status_code == 200  # and the server keeps serving


def test_one_bad_request_in_a_batch_fails_only_itself(server: Server) -> None:
    """Requests queued behind a 2.5 s prediction are stacked into one model call; one of them is bad."""
    blocker = threading.Thread(target=invoke, args=(server, [[2.5, 0]]))
    blocker.start()
    time.sleep(0.8)  # the blocker is in the model: what comes next queues and is batched
    rows = [[[0, i]] for i in range(1, 6)]
    rows[2] = [[0, -1]]
    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda body: invoke(server, body), rows))
    blocker.join()
    assert [r.status_code for r in responses] == [200, 200, 500, 200, 200]
    assert [r.json()["predictions"] for i, r in enumerate(responses) if i != 2] == [[2.0], [4.0], [8.0], [10.0]]
    assert "negative input -1" in responses[2].json()["message"]
    # They really were stacked: the batch failed as a whole, then each request was retried alone.
    server.wait_log(lambda e: "requests failed (negative input -1); retrying each alone" in e.get("message", ""))
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'shipyard_errors_total{code="500",reason="ModelError"}' in metrics


def test_ping_stays_fast_while_a_10_s_prediction_runs(server: Server) -> None:
    """The model computes for 10 s in its thread; /ping keeps answering from the event loop meanwhile.

    Every ping must come back long before the prediction ends (no ping waits for the model), and the
    typical ping within 50 ms. The median is asserted rather than the maximum because this 2-core box
    is shared: the scheduler alone can delay any single answer past 50 ms.
    """
    answer: dict[str, httpx.Response] = {}
    started = time.monotonic()
    slow = threading.Thread(target=lambda: answer.setdefault("r", invoke(server, [[10.0, 21]])))
    slow.start()
    time.sleep(0.5)
    latencies = []
    with httpx.Client(timeout=5) as client:
        while slow.is_alive():
            t0 = time.perf_counter()
            response = client.get(f"{server.url}/ping")
            latencies.append(time.perf_counter() - t0)
            assert response.status_code == 200
            time.sleep(0.1)
    slow.join()
    assert answer["r"].status_code == 200
    assert answer["r"].json() == {"predictions": [42.0]}
    assert time.monotonic() - started >= 10  # the prediction really ran for 10 s
    assert len(latencies) >= 30
    assert max(latencies) < 1.0, f"a ping waited for the model: {max(latencies):.3f} s"
    assert statistics.median(latencies) <= 0.050, f"median ping {statistics.median(latencies) * 1000:.1f} ms"


def test_timeout_is_504(servers: ServerFactory, behaviour_bundle: Path) -> None:
    server = servers(behaviour_bundle, env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"})
    started = time.monotonic()
    response = invoke(server, [[5.0, 1]])
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {
        "error": "Timeout",
        "message": "no answer within 1 s (SAGEMAKER_MODEL_SERVER_TIMEOUT)",
    }
    assert elapsed < 4.5  # answered at the deadline, not when the 5 s prediction finished
    # The only worker's model is still busy with that call: no worker can take work, and /ping says so
    # (until the call ends or, SHIPYARD_OVERRUN_GRACE later, its process is replaced; see test_faults.py).
    ping = httpx.get(f"{server.url}/ping")
    assert ping.status_code == 503 and ping.json() == {"status": "unavailable"}
    server.wait_ready(timeout=10)
    assert invoke(server, [[0, 3]]).json() == {"predictions": [6.0]}
    server.stop()


def test_full_queue_is_503_with_retry_after(servers: ServerFactory, behaviour_bundle: Path) -> None:
    server = servers(behaviour_bundle, env={"SHIPYARD_MAX_QUEUE": "1"})
    blocker = threading.Thread(target=invoke, args=(server, [[2.5, 0]]))
    blocker.start()
    time.sleep(0.8)  # the blocker is computing; the queue holds one more request, no more
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda i: invoke(server, [[0, i]]), range(4)))
    blocker.join()
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 503, 503, 503]
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "Overloaded"
            assert "already waiting for the model" in response.json()["message"]
    assert invoke(server, [[0, 1]]).status_code == 200  # room again
    server.stop()
