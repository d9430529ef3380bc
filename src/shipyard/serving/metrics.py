"""Prometheus metrics, shared by every worker process (prometheus-client's multiprocess mode).

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker imports prometheus-client, so
``GET /metrics`` on any worker reports the whole server.

In that mode every update is a locked write to a memory-mapped file, about 3 µs each, and a request
makes three (a count, a latency sum, a latency bucket). :meth:`Metrics.observe` therefore tallies
requests in plain Python and writes the tallies once per event-loop turn (the way the access log
flushes), which makes the per-request cost well under a microsecond; ``/metrics`` flushes first.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

__all__ = ["Metrics", "ModelMetrics", "render"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter("shipyard_requests", "HTTP requests answered", ["route", "code"])
        self.latency = Histogram(
            "shipyard_request_duration_seconds", "Time from request to answer", ["route"], buckets=_LATENCY_BUCKETS
        )
        self.errors = Counter("shipyard_errors", "Error answers by status and reason", ["code", "reason"])
        self.batch_rows = Histogram("shipyard_batch_rows", "Rows per model call", buckets=_BATCH_BUCKETS)
        self.batch_requests = Histogram("shipyard_batch_requests", "Requests per model call", buckets=_BATCH_BUCKETS)
        self.predict_seconds = Histogram("shipyard_predict_seconds", "Time of one model call", buckets=_LATENCY_BUCKETS)
        self.queue_depth = Gauge("shipyard_queue_depth", "Requests waiting for the model", multiprocess_mode="livesum")
        self.workers_available = Gauge(
            "shipyard_workers_available", "Workers that can take model calls now", multiprocess_mode="livesum"
        )
        self.model_restarts = Counter(
            "shipyard_model_restarts",
            "Model processes replaced, by reason (out_of_memory, crashed, overran...)",
            ["reason"],
        )
        self.log_lines_dropped = Counter(
            "shipyard_log_lines_dropped", "Log lines dropped because stdout was not being read"
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # (route, code) -> [requests, sum of seconds, count per latency bucket (the last one is +Inf)]
        self._tally: dict[tuple[str, int], list[Any]] = {}
        self._scheduled = False
        self._batches: deque[tuple[int, int, float]] = deque()  # appended by the model thread
        self._depth: int | None = None

    def batch(self, requests: int, rows: int, seconds: float) -> None:
        """One model call, reported from the model thread; written with the next flush, after the answers
        are sent (deque.append is thread-safe, and six file writes no longer delay a lone request)."""
        self._batches.append((requests, rows, seconds))

    def queue(self, depth: int) -> None:
        """Requests waiting for the model, as of the last batch taken."""
        self._depth = depth

    def observe(self, route: str, code: int, seconds: float) -> None:
        """One answered request: tallied now, written to the shared metrics at the end of this loop turn."""
        key = (route, code)
        tally = self._tally.get(key)
        if tally is None:
            tally = self._tally[key] = [0, 0.0, [0] * (len(_LATENCY_BUCKETS) + 1)]
        tally[0] += 1
        tally[1] += seconds
        tally[2][bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # the first bucket with seconds <= bound
        if not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop (a script or a test): write at once
                self.flush()
                return
            self._scheduled = True

    def flush(self) -> None:
        """Write the tallied requests to the Prometheus metrics."""
        self._scheduled = False
        batches = self._batches
        while batches:
            requests, rows, seconds = batches.popleft()
            self.batch_rows.observe(rows)
            self.batch_requests.observe(requests)
            self.predict_seconds.observe(seconds)
        if self._depth is not None:
            self.queue_depth.set(self._depth)
            self._depth = None
        tallies, self._tally = self._tally, {}
        for (route, code), (count, total, buckets) in tallies.items():
            pair = self._children.get((route, code))
            if pair is None:
                pair = (self.requests.labels(route, str(code)), self.latency.labels(route))
                self._children[(route, code)] = pair
            counter, histogram = pair
            counter.inc(count)
            _add_to_histogram(histogram, total, buckets)


def _add_to_histogram(histogram: Any, total: float, buckets: list[int]) -> None:
    """Add tallied observations to a histogram child (its value objects, as ``Histogram.observe`` does)."""
    values = getattr(histogram, "_buckets", None)
    if values is None or len(values) != len(buckets) or not hasattr(histogram, "_sum"):
        # prometheus-client changed its internals (tests/serving/test_metrics.py would say so): replay the
        # tally through the public API; counts stay exact, the sum then counts each value at its bucket's bound
        bounds = (*_LATENCY_BUCKETS, _LATENCY_BUCKETS[-1])
        for bound, count in zip(bounds, buckets, strict=True):
            for _ in range(count):
                histogram.observe(bound)
        return
    histogram._sum.inc(total)
    for index, count in enumerate(buckets):
        if count:
            values[index].inc(count)


def render() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


class ModelMetrics:
    """A multi-model endpoint's figures (serving/multimodel.py): loads, unloads, hits, misses, what is loaded."""

    def __init__(self) -> None:
        self.loads = Counter("shipyard_model_loads", "Models loaded (a miss that loaded, or POST /models)")
        self.load_failures = Counter("shipyard_model_load_failures", "Model loads that failed, by reason", ["reason"])
        self.load_seconds = Histogram("shipyard_model_load_seconds", "Time to load one model", buckets=_LATENCY_BUCKETS)
        self.unloads = Counter(
            "shipyard_model_unloads", "Models unloaded, by reason (evicted, deleted, replaced)", ["reason"]
        )
        self.hits = Counter("shipyard_model_hits", "Invocations of a model already loaded in the worker")
        self.misses = Counter("shipyard_model_misses", "Invocations that had to load their model first")
        self.loaded = Gauge("shipyard_models_loaded", "Models loaded now (all workers)", multiprocess_mode="livesum")
        self.memory = Gauge(
            "shipyard_model_memory_bytes", "Memory the loaded models take (all workers)", multiprocess_mode="livesum"
        )
        self.budget = Gauge(
            "shipyard_model_memory_budget_bytes",
            "The loaded models' memory budget (all workers)",
            multiprocess_mode="livesum",
        )
