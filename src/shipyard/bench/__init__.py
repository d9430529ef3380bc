"""``shipyard bench``: measure an endpoint the way the tutorials do, then say what to run it on.

    >>> report = run_bench("http://127.0.0.1:8080", texts)        # doctest: +SKIP
    >>> report.write("bench-out/")                                 # doctest: +SKIP

Three parts: the tutorial's table (one request carrying N items, for N in ``sizes``: median and spread),
a load sweep (closed loop over ``concurrency`` levels, or open loop over arrival ``rates``) with req/s,
items/s, p50/p95/p99 and errors by status, and a :class:`~shipyard.bench.recommend.Recommendation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.bench.load import (
    HTTPSender,
    LoadResult,
    RawHTTPSender,
    Send,
    TransportSender,
    closed_loop,
    open_loop,
    run_sync,
    sender_for,
    sequential,
)
from shipyard.bench.recommend import Recommendation, recommend
from shipyard.bench.report import BenchReport
from shipyard.errors import UsageError

if TYPE_CHECKING:
    from shipyard.client.transport import Transport

__all__ = ["BenchReport", "LoadResult", "Recommendation", "request_body", "run_bench"]

DEFAULT_SIZES = (1, 10, 50, 500)
DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)
OPEN_LOOP_THREADS = 64  # requests in flight at most through a blocking transport, in the open loop


def request_body(rows: Sequence[Any], count: int) -> bytes:
    """A JSON request of ``count`` items, cycling through ``rows``."""
    if not rows:
        raise UsageError("the benchmark needs at least one input row")
    return orjson.dumps({"instances": [rows[i % len(rows)] for i in range(count)]}, option=orjson.OPT_SERIALIZE_NUMPY)


def run_bench(
    url: str,
    rows: Sequence[Any],
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    repeats: int = 5,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    rates: Sequence[float] = (),
    duration: float = 5.0,
    items: int = 1,
    timeout_s: float = 65.0,
    server_vcpus: int | None = None,
    peak_rps: float | None = None,
    safety: float = 0.5,
    slo_p99_ms: float | None = None,
    on_step: Callable[[str], None] | None = None,
    transport: Transport | None = None,
) -> BenchReport:
    """Benchmark the endpoint at ``url`` with requests built from ``rows``; see the module docstring.

    With ``transport`` (a SageMaker endpoint's InvokeEndpoint, say), requests go through it instead, on as
    many threads as the highest concurrency level, and ``url`` only names the endpoint in the report.
    """
    _check(sizes, repeats, concurrency, rates, duration, items)
    step = on_step or (lambda message: None)
    report = BenchReport(url, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), environment=BenchReport.machine())
    workers = _workers(url) if transport is None else None
    sender: HTTPSender | RawHTTPSender | TransportSender
    if transport is not None:
        threads = OPEN_LOOP_THREADS if rates else max([*concurrency, 1])
        sender = TransportSender(transport, threads=threads, timeout_s=timeout_s)
    else:
        sender = sender_for(url, timeout_s=timeout_s)

    async def measure() -> None:
        async with sender as send:
            await send(request_body(rows, 1))  # warm the connection and the model
            for count in sizes:
                step(f"one request with {count} items × {repeats}")
                report.sizes.append(await sequential(send, request_body(rows, count), repeats, count))
            await _sweep(send, request_body(rows, items), report, concurrency, rates, duration, items, step)

    run_sync(measure())
    report.environment["server_workers"] = workers
    report.environment["server_vcpus"] = server_vcpus
    report.environment["load_average_1m_after"] = BenchReport.machine()["load_average_1m"]
    report.recommendation = recommend(
        report.sizes,
        report.sweep,
        server_vcpus=server_vcpus,
        peak_rps=peak_rps,
        safety=safety,
        slo_p99_ms=slo_p99_ms,
        workers=workers,
    )
    return report


def _check(
    sizes: Sequence[int],
    repeats: int,
    concurrency: Sequence[int],
    rates: Sequence[float],
    duration: float,
    items: int,
) -> None:
    if repeats < 1 or duration <= 0 or items < 1:
        raise UsageError("repeats and items must be at least 1, and duration positive")
    if any(n < 1 for n in sizes) or any(c < 1 for c in concurrency) or any(r <= 0 for r in rates):
        raise UsageError("sizes and concurrency levels must be at least 1, and rates positive")


async def _sweep(
    send: Send,
    body: bytes,
    report: BenchReport,
    concurrency: Sequence[int],
    rates: Sequence[float],
    duration: float,
    items: int,
    step: Callable[[str], None],
) -> None:
    """The load sweep: an open loop at each rate, or else a closed loop at each concurrency level."""
    if rates:
        for rate in rates:
            step(f"open loop at {rate:g} req/s for {duration:g} s")
            report.sweep.append(await open_loop(send, body, rate, duration, items))
        return
    for level in concurrency:
        step(f"closed loop with {level} concurrent clients for {duration:g} s")
        report.sweep.append(await closed_loop(send, body, level, duration, items))


def _workers(url: str) -> int | None:
    """The server's worker count, from GET /execution-parameters (MaxConcurrentTransforms), if it answers."""
    import httpx

    from shipyard.client.transport import base_url

    try:
        response = httpx.get(f"{base_url(url)}/execution-parameters", timeout=5.0)
        value = response.json().get("MaxConcurrentTransforms") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None
