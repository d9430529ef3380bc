"""``limit_warnings``: API Gateway's 10 MB and 29 s against the endpoint's own limits and its last bench."""

from __future__ import annotations

import re

from shipyard.cloud.apigateway import PASSED_STATUSES, selection_pattern
from shipyard.deploy.expose import ExposeOptions, limit_warnings
from shipyard.deploy.options import DeployOptions, Serverless
from shipyard.deploy.state import BenchFigures, Deployment


def record(*, serverless: bool = False, bench: BenchFigures | None = None) -> Deployment:
    options = DeployOptions(
        source="b/", name="digits", target="sagemaker", serverless=Serverless(2048, 5) if serverless else None
    )
    now = "2026-12-02T19:00:00+00:00"
    return Deployment("digits", "sagemaker", "InService", "b/", now, now, options=options, bench=bench)


def test_the_effective_payload_limit_is_the_endpoints_six_mb_realtime_and_four_serverless() -> None:
    realtime = limit_warnings(record(), ExposeOptions())
    assert realtime[0].startswith("payload: API Gateway takes up to 10 MB and the real-time endpoint 6 MB")
    assert "over 6 MB fails (413)" in realtime[0] and "shipyard invoke --chunk" in realtime[0]
    serverless = limit_warnings(record(serverless=True), ExposeOptions())
    assert "the serverless endpoint 4 MB" in serverless[0] and "over 4 MB fails" in serverless[0]


def test_the_timeout_is_said_and_without_a_bench_the_user_is_told_to_run_one() -> None:
    warnings = limit_warnings(record(), ExposeOptions())
    assert warnings[1] == "timeout: API Gateway ends a request after 29 s (504) although the endpoint allows 60 s"
    assert warnings[2].startswith("no `shipyard bench digits` yet")
    assert len(warnings) == 3


def test_a_fast_bench_adds_nothing() -> None:
    fast = BenchFigures(p50_ms=40, p99_ms=900, max_ms=2_000, measured_at="2026-12-01T10:00:00+00:00")
    assert len(limit_warnings(record(bench=fast), ExposeOptions())) == 2


def test_a_bench_near_or_over_29_s_warns_with_the_fixes() -> None:
    near = BenchFigures(p50_ms=5_000, p99_ms=24_000, max_ms=26_500, measured_at="2026-12-01T10:00:00+00:00")
    (warning,) = limit_warnings(record(bench=near), ExposeOptions(path="/score"))[2:]
    assert "p99 24.0 s and max 26.5 s, near API Gateway's 29 s" in warning
    assert "shipyard invoke --chunk" in warning and "asynchronous inference" in warning
    assert "quota increase" in warning and "/score" in warning
    over = BenchFigures(p50_ms=5_000, p99_ms=12_000, max_ms=31_000)
    (warning,) = limit_warnings(record(bench=over), ExposeOptions())[2:]
    assert "max 31.0 s, over API Gateway's 29 s" in warning and "(undated)" in warning
    below = BenchFigures(p50_ms=5_000, p99_ms=23_000, max_ms=23_100)  # 80 % of 29 s is 23.2 s
    assert len(limit_warnings(record(bench=below), ExposeOptions())) == 2


def test_each_passed_status_has_a_pattern_only_it_matches() -> None:
    """API Gateway answers with the status of the integration response whose selectionPattern matches: the
    listed statuses map to themselves, an unlisted 4xx to 400, an unlisted 5xx to 500, never two at once."""
    patterns = {status: selection_pattern(status) for status in PASSED_STATUSES}
    for code in [f"{n}" for n in range(400, 600)]:
        matched = [status for status, pattern in patterns.items() if re.fullmatch(pattern, code)]
        expected = code if code in PASSED_STATUSES else ("400" if code[0] == "4" else "500")
        assert matched == [expected], code
    assert not any(re.fullmatch(p, "200") for p in patterns.values())
