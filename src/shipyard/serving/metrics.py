"""Prometheus metrics, shared by every worker process (prometheus-client's multiprocess mode).

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker imports prometheus-client, so
``GET /metrics`` on any worker reports the whole server.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

__all__ = ["Metrics", "render"]

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
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, code: int, seconds: float) -> None:
        """One answered request; the labelled children are cached (the label lookup is the slow part)."""
        key = (route, code)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(route, str(code)), self.latency.labels(route))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)


def render() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
