"""Metrics.observe tallies requests and writes them once per loop turn (serving/metrics.py).

The tallied path must expose exactly what prometheus-client's own ``Counter.inc`` / ``Histogram.observe``
would: same counts, same buckets, same sum. Checked in a subprocess in multiprocess mode (the mode the
server runs in), since prometheus-client picks its value storage at import time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, json, random, threading
from prometheus_client import Counter, Histogram
from shipyard.serving.metrics import Metrics, _LATENCY_BUCKETS, render

random.seed(7)
values = [random.choice([0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.2, 59.0, 61.0, 1e9]) * random.random() * 2
          for _ in range(500)] + list(_LATENCY_BUCKETS)  # exact bounds fall in their own bucket ("le")
codes = [random.choice([200, 200, 200, 400, 500]) for _ in values]

metrics = Metrics()
reference_requests = Counter("reference_requests", "r", ["route", "code"])
reference_latency = Histogram("reference_request_duration_seconds", "r", ["route"], buckets=_LATENCY_BUCKETS)

async def serve():
    for i, (seconds, code) in enumerate(zip(values, codes)):
        metrics.observe("invocations", code, seconds)
        reference_requests.labels("invocations", str(code)).inc()
        reference_latency.labels("invocations").observe(seconds)
        if i % 50 == 0:
            await asyncio.sleep(0)  # let some loop turns flush on their own
    before_flush = render().decode()
    metrics.flush()
    return before_flush

reporter = threading.Thread(target=metrics.batch, args=(3, 5, 0.002))  # the model thread reports batches
reporter.start()
reporter.join()
metrics.queue(4)
before_flush = asyncio.run(serve())
samples = {}
for line in render().decode().splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
print(json.dumps({"samples": samples, "flushed_by_loop": "shipyard_requests_total" in before_flush}))
"""


def test_tallied_metrics_equal_prometheus_own_observations(tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    samples = result["samples"]
    ours = {k.replace("shipyard_", "", 1): v for k, v in samples.items() if k.startswith("shipyard_request")}
    reference = {k.replace("reference_", "", 1): v for k, v in samples.items() if k.startswith("reference_")}
    assert ours.keys() == reference.keys()
    assert len(ours) > 20  # counts by code, 17 buckets, sum and count
    for key, value in reference.items():
        assert abs(ours[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    assert result["flushed_by_loop"]  # the loop's own turn wrote them, before any explicit flush
    assert samples["shipyard_batch_requests_sum"] == 3
    assert samples["shipyard_batch_rows_sum"] == 5
    assert samples["shipyard_predict_seconds_count"] == 1
    assert samples["shipyard_queue_depth"] == 4
