"""The front's parts without a server: the token bucket, the quota's periods, histogram_quantile, the key."""

from __future__ import annotations

import math
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.deploy.expose import Quota
from shipyard.deploy.front import QuotaCounter, TokenBucket, new_api_key, write_key_file
from shipyard.deploy.metrics_health import health_from_metrics, histogram_quantile


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4.0, burst=2, clock=clock)
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]
    assert bucket.take() == pytest.approx(0.25)
    clock.now = 0.25
    assert bucket.take() == 0.0 and bucket.take() == pytest.approx(0.25)
    clock.now = 100.0  # never more than the burst
    assert [bucket.take() for _ in range(3)][:2] == [0.0, 0.0] and bucket.take() > 0


def test_quota_resets_with_its_period() -> None:
    now = [datetime(2026, 1, 31, 23, 0, tzinfo=UTC)]
    counter = QuotaCounter(Quota(2, "MONTH"), clock=lambda: now[0])
    assert [counter.take(), counter.take(), counter.take()] == [True, True, False]
    now[0] = datetime(2026, 2, 1, 0, 1, tzinfo=UTC)
    assert counter.take()
    week = QuotaCounter(Quota(1, "WEEK"), clock=lambda: now[0])
    assert week.take() and not week.take()


def test_histogram_quantile_matches_promql() -> None:
    # 10 in (0, 0.1], 80 in (0.1, 0.5], 10 in (0.5, 1]; PromQL: p50 = 0.1 + 0.4 * (50 - 10) / 80 = 0.3
    buckets = [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * 9 / 10)
    assert histogram_quantile(0.05, buckets) == pytest.approx(0.05)  # the first bucket starts at 0
    assert histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 5.0)]) == 0.1  # in +Inf: the highest finite bound
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_health_from_metrics_text() -> None:
    text = "\n".join(
        [
            "# TYPE shipyard_requests_total counter",
            'shipyard_requests_total{code="200",route="invocations"} 7.0',
            'shipyard_requests_total{code="400",route="invocations"} 2.0',
            'shipyard_requests_total{code="503",route="invocations"} 1.0',
            'shipyard_requests_total{code="200",route="ping"} 50.0',
            "# TYPE shipyard_request_duration_seconds histogram",
            'shipyard_request_duration_seconds_bucket{le="0.01",route="invocations"} 5.0',
            'shipyard_request_duration_seconds_bucket{le="0.1",route="invocations"} 10.0',
            'shipyard_request_duration_seconds_bucket{le="+Inf",route="invocations"} 10.0',
            'shipyard_request_duration_seconds_count{route="invocations"} 10.0',
            'shipyard_request_duration_seconds_sum{route="invocations"} 0.2',
            'shipyard_request_duration_seconds_bucket{le="+Inf",route="ping"} 50.0',
            "",
        ]
    )
    health = health_from_metrics(text)
    assert (health.invocations, health.errors_4xx, health.errors_5xx) == (10.0, 2.0, 1.0)
    assert health.p50_ms == pytest.approx(10.0) and health.p99_ms == pytest.approx(10 + 90 * 4.9 / 5)
    assert health.window == "since the container started" and health.alarms == []
    assert any("sagemaker" in note for note in health.notes)


def test_key_is_40_alphanumerics_in_a_0600_file(tmp_path: Path) -> None:
    key = new_api_key()
    assert len(key) == 40 and key.isalnum() and key != new_api_key()
    path = tmp_path / "local" / "front-x.key"
    write_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text().strip() == key


def test_a_caller_gone_before_its_whole_body_is_neither_forwarded_nor_answered() -> None:
    """Half a body then ``http.disconnect``: the front forwards nothing (a part of a request is no request)."""
    import asyncio
    from typing import Any

    from shipyard.deploy.front import Front, FrontConfig

    front = Front(FrontConfig("http://127.0.0.1:9", key=None), log=lambda line: None)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"instances": [[1, 2', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-type", b"application/json")]}
    asyncio.run(front(scope, receive, send))
    assert front.forwarded == 0 and sent == []
