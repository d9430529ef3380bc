"""Faults under load: what a killed model process, a killed worker and a run of poison requests cost.

    .venv/bin/python bench/faults.py      # writes bench/results/faults.{json,md}

The digits bundle (examples/digits/train.py) behind ``serve`` with two workers; 16 client threads, each with
its own keep-alive connection, send one-row requests as fast as they are answered and check every answer
against the in-process model. Three runs:

1. every 0.5 s, SIGKILL one worker's **model process** (the OOM killer's signal): requests lost, answered
   wrong, answered with an error;
2. every 2 s, SIGKILL one **worker** (the HTTP process): the same counts (its open connections cannot survive);
3. ten **poison requests** in a row on one connection (a bundle whose model segfaults on a marked row):
   the time from each poison answer to the next good answer.

A request is *lost* when the client got no HTTP answer at all (connection reset or closed); every lost
request is retried by the client on a new connection, so the run goes on. Exits 1 if a model-process kill
lost a request or any answer was wrong.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import descendants  # noqa: E402


def start(bundle: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SHIPYARD_"))}
    env |= {
        "SHIPYARD_MODEL_DIR": str(bundle),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        "SHIPYARD_ACCESS_LOG": "0",
    }
    process = subprocess.Popen([str(BIN / "serve")], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server not ready: {log.read_text()[-2000:]}")


def load(url: str, rows: np.ndarray, expected: list[int], seconds: float, kill: Any) -> dict[str, Any]:
    counts = {"sent": 0, "ok": 0, "wrong": 0, "lost": 0, "errors": {}}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        index = seed
        http = httpx.Client(base_url=url, timeout=30)
        while time.monotonic() < stop:
            row = index % len(rows)
            index += 1
            try:
                answer = http.post("/invocations", json={"instances": [rows[row].tolist()]})
            except httpx.HTTPError:
                with lock:
                    counts["sent"] += 1
                    counts["lost"] += 1
                http.close()
                http = httpx.Client(base_url=url, timeout=30)
                continue
            with lock:
                counts["sent"] += 1
                if answer.status_code != 200:
                    key = f"{answer.status_code} {answer.json().get('error', '')}"
                    counts["errors"][key] = counts["errors"].get(key, 0) + 1
                elif answer.json()["predictions"] == [expected[row]]:
                    counts["ok"] += 1
                else:
                    counts["wrong"] += 1
        http.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    kills = kill(stop)
    for thread in threads:
        thread.join()
    counts["kills"] = kills
    return counts


def killing(pids: Any, every: float) -> Any:
    def run(stop: float) -> int:
        kills = 0
        while time.monotonic() + every < stop:
            time.sleep(every)
            victims = pids()
            if victims:
                os.kill(victims[kills % len(victims)], signal.SIGKILL)
                kills += 1
        return kills

    return run


def poison_runs(work: Path) -> list[float]:
    import shipyard

    def model(batch: np.ndarray) -> np.ndarray:
        import ctypes

        batch = np.asarray(batch, dtype=np.float64)
        if (batch[:, 0] < 0).any():
            ctypes.string_at(0)
        return batch[:, 0] * 2

    bundle = work / "poison"
    shipyard.save(model, bundle, example=np.zeros((1, 1)), name="poison")
    process, url = start(bundle, 1, work / "poison.log")
    recoveries = []
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(10):
                assert http.post("/invocations", json=[[-1]]).status_code == 500
                started = time.perf_counter()
                assert http.post("/invocations", json=[[2]]).json() == {"predictions": [4.0]}
                recoveries.append(time.perf_counter() - started)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    return recoveries


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="shipyard-faults-"))
    bundle = work / "digits"
    subprocess.run(
        [sys.executable, str(ROOT / "examples/digits/train.py"), str(bundle)], check=True, capture_output=True
    )
    import joblib
    from sklearn.datasets import load_digits

    model = joblib.load(bundle / "model" / "model.joblib")
    rows = load_digits(return_X_y=True)[0][-64:]
    expected = [int(v) for v in model.predict(rows)]
    results: dict[str, Any] = {}

    process, url = start(bundle, 2, work / "model-kill.log")
    try:

        def model_processes() -> list[int]:
            top = [int(c) for c in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
            return [p for w in top for p in descendants(w)]

        results["model_process_killed"] = load(url, rows, expected, 20, killing(model_processes, 0.5))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    process, url = start(bundle, 2, work / "worker-kill.log")
    try:

        def http_workers() -> list[int]:
            return [int(c) for c in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]

        results["worker_killed"] = load(url, rows, expected, 20, killing(http_workers, 2.0))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    results["poison_recoveries_s"] = poison_runs(work)
    results["machine"] = {"cores": os.cpu_count(), "load_after": list(os.getloadavg())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (RESULTS / "faults.md").write_text(markdown)
    print(markdown)
    bad = results["model_process_killed"]["lost"] or any(r["wrong"] for k, r in results.items() if k.endswith("killed"))
    return 1 if bad else 0


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Faults under load (bench/faults.py)",
        "",
        "digits bundle, `serve` with 2 workers, 16 client threads on keep-alive connections, 20 s per run; every "
        "answer checked against the in-process model. Reproduce: `.venv/bin/python bench/faults.py`.",
        "",
        "| run | kills | requests | answered right | wrong | error answers | lost (no answer) |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for key, label in (
        ("model_process_killed", "SIGKILL a model process every 0.5 s"),
        ("worker_killed", "SIGKILL an HTTP worker every 2 s"),
    ):
        r = results[key]
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
        lines.append(f"| {label} | {r['kills']} | {r['sent']} | {r['ok']} | {r['wrong']} | {errors} | {r['lost']} |")
    rec = results["poison_recoveries_s"]
    lines += [
        "",
        "Ten poison requests in a row (the model segfaults; 1 worker): each answered 500 `ModelCrashed`; time from "
        "each poison answer to the next good answer, in seconds: "
        + ", ".join(f"{s:.3f}" for s in rec)
        + f" (max {max(rec):.3f}).",
        "",
        f"Machine: {results['machine']['cores']} cores; load average after: "
        + ", ".join(f"{x:.2f}" for x in results["machine"]["load_after"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
