"""Reaching a deployment through its public API (``--via api``), its limits, and the figures a bench leaves.

No server is needed for these: what is checked is the choice of destination and limits, and the record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.bench.load import LoadResult, Sample
from shipyard.bench.recommend import Recommendation
from shipyard.bench.report import BenchReport
from shipyard.client.chunked import API_GATEWAY, limits_for
from shipyard.deploy import Deployer
from shipyard.deploy.endpoint import destination
from shipyard.deploy.expose import ExposeOptions, Exposure, Quota
from shipyard.deploy.state import BenchFigures, Deployment, StateStore
from shipyard.errors import InvokeError, SpecError


def _record(name: str, *, exposure: Exposure | None = None) -> Deployment:
    return Deployment(
        name=name,
        target="local",
        status="InService",
        source="bundle",
        created_at="2026-12-02T10:00:00+00:00",
        updated_at="2026-12-02T10:00:00+00:00",
        url="http://127.0.0.1:9",
        exposure=exposure,
    )


@pytest.fixture
def deployer(tmp_path: Path) -> Deployer:
    store = StateStore(tmp_path / "state.json")
    store.put(_record("plain"))
    store.put(_record("public", exposure=Exposure("http://127.0.0.1:8/predict", "api-key", "/predict", 5.0, 10)))
    return Deployer(store)


def test_via_api_goes_to_the_public_url_of_an_exposed_deployment(deployer: Deployer) -> None:
    where = destination("public", lambda: deployer, via="api")
    assert (where.url, where.name, where.via) == ("http://127.0.0.1:8/predict", "public", "api")
    direct = destination("public", lambda: deployer)
    assert (direct.url, direct.via) == ("http://127.0.0.1:9", "endpoint")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("plain", "has no public API: `shipyard expose plain`"),
        ("missing", "no deployment named 'missing'"),
        ("http://127.0.0.1:8080", "give its name"),
    ],
)
def test_via_api_refuses_what_has_no_public_api(deployer: Deployer, target: str, message: str) -> None:
    with pytest.raises(InvokeError, match=message):
        destination(target, lambda: deployer, via="api")


def test_an_unknown_via_is_refused(deployer: Deployer) -> None:
    with pytest.raises(InvokeError, match="--via 'lambda'"):
        destination("plain", lambda: deployer, via="lambda")


def test_the_api_caps_the_endpoints_time_limit_but_not_a_lower_payload_limit() -> None:
    realtime, serverless = limits_for(behind_api=True), limits_for(serverless=True, behind_api=True)
    assert realtime.time_limit_s == API_GATEWAY.time_limit_s == 29.0
    assert realtime.max_payload_bytes == 6 * 1024 * 1024  # the endpoint's 6 MB is below the API's 10 MB
    assert serverless.max_payload_bytes == 4 * 1024 * 1024
    assert limits_for().time_limit_s == 60.0  # straight to the endpoint: its own 60 s


def test_expose_options_are_checked_when_made() -> None:
    assert ExposeOptions.parse(quota="100000/month", path="predict").path == "/predict"
    assert str(Quota.parse("1_000/day")) == "1000/day"
    for bad, flag in (
        ({"auth": "oauth"}, "auth"),
        ({"rate": 0.0}, "rate"),
        ({"burst": 0}, "burst"),
        ({"path": "/a b"}, "path"),
        ({"quota": "many/month"}, "quota"),
        ({"quota": "10/year"}, "quota"),
        ({"auth": "iam", "quota": "10/day"}, "quota"),
    ):
        with pytest.raises(SpecError) as caught:
            ExposeOptions.parse(**bad)  # type: ignore[arg-type]
        assert caught.value.option == flag


def _level(level: float, latencies_ms: list[float], window_s: float = 1.0) -> LoadResult:
    samples = [Sample(i * 0.01, ms / 1000, 200) for i, ms in enumerate(latencies_ms)]
    return LoadResult("closed", level, 1, window_s, samples)


def test_a_bench_headline_is_read_at_the_recommended_level() -> None:
    report = BenchReport(
        "x",
        "now",
        sizes=[_level(1, [5.0, 400.0])],  # the slowest answer of the run is in the size table
        sweep=[_level(1, [10.0] * 100), _level(4, [20.0] * 99 + [90.0], window_s=0.5)],  # p99: 20 + 0.01 × 70
        recommendation=Recommendation(concurrency=4, max_rps=200.0),
    )
    assert report.headline() == {"p50_ms": 20.0, "p99_ms": 20.7, "max_ms": 400.0, "rps": 200.0}
    assert BenchReport("x", "now").headline() == {}


def test_the_last_bench_is_kept_in_the_record(deployer: Deployer) -> None:
    figures = BenchFigures(12.5, 80.0, 400.0, rps=150.0, measured_at="2026-12-02T11:00:00+00:00", via="api")
    deployer.note_bench("plain", figures)
    again = Deployer(StateStore(deployer.state.path)).record("plain")
    assert again.bench == figures
    assert again.exposure is None
    assert Deployer(StateStore(deployer.state.path)).record("public").exposure == deployer.record("public").exposure
