"""Load generation: single requests, closed-loop concurrency and open-loop arrival rates, over async HTTP.

Every request's start time, latency and status is kept (:class:`Sample`); a :class:`LoadResult` turns the
samples of one load level into the usual figures. Closed loop: ``concurrency`` clients each send the next
request when the previous one is answered (what a fixed pool of callers does). Open loop: requests start
at a fixed rate whatever happens to earlier ones (what independent users do), so a server that cannot keep
up shows growing latency instead of silently slowing the clients down.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

__all__ = ["HTTPSender", "LoadResult", "Sample", "closed_loop", "open_loop", "percentile", "run_sync", "sequential"]

TIMED_OUT = 598
UNREACHABLE = 599
DROPPED = 0  # open loop: not sent, too many requests already in flight
STATUS_NAMES = {TIMED_OUT: "client timeout", UNREACHABLE: "connection error", DROPPED: "dropped"}

Send = Callable[[bytes], Awaitable[int]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sample:
    started: float  # seconds since the level began
    seconds: float
    status: int


@dataclass
class LoadResult:
    mode: str  # "closed" | "open" | "single"
    level: float  # concurrency, or arrival rate in req/s
    items_per_request: int
    window_s: float  # the measured window (after warm-up)
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 200]

    @property
    def requests_per_s(self) -> float:
        return len(self.ok) / self.window_s if self.window_s > 0 else 0.0

    @property
    def items_per_s(self) -> float:
        return self.requests_per_s * self.items_per_request

    def latency_ms(self, q: float) -> float | None:
        values = sorted(s.seconds for s in self.ok)
        return None if not values else percentile(values, q) * 1000

    @property
    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sample in self.samples:
            if sample.status != 200:
                key = STATUS_NAMES.get(sample.status, str(sample.status))
                counts[key] = counts.get(key, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "level": self.level,
            "items_per_request": self.items_per_request,
            "requests": len(self.samples),
            "window_s": round(self.window_s, 3),
            "req_per_s": round(self.requests_per_s, 2),
            "items_per_s": round(self.items_per_s, 2),
            "p50_ms": _round(self.latency_ms(50)),
            "p95_ms": _round(self.latency_ms(95)),
            "p99_ms": _round(self.latency_ms(99)),
            "errors": self.errors,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy's default method)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


class HTTPSender:
    """``POST URL/invocations`` with one pooled async client; answers the status (598/599 for failures)."""

    def __init__(self, url: str, *, content_type: str = "application/json", timeout: float = 65.0) -> None:
        from shipyard.client.http import _base

        self.url = f"{_base(url)}/invocations"
        self.headers = {"content-type": content_type}
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HTTPSender:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1024)
        self._client = httpx.AsyncClient(limits=limits, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, body: bytes) -> int:
        assert self._client is not None, "use `async with HTTPSender(url) as send`"
        try:
            response = await self._client.post(self.url, content=body, headers=self.headers)
        except httpx.TimeoutException:
            return TIMED_OUT
        except httpx.HTTPError:
            return UNREACHABLE
        return response.status_code


async def _timed(send: Send, body: bytes, origin: float, out: list[Sample]) -> None:
    started = time.perf_counter()
    status = await send(body)
    out.append(Sample(started - origin, time.perf_counter() - started, status))


async def sequential(send: Send, body: bytes, repeats: int, items: int) -> LoadResult:
    """``repeats`` requests one after the other (the tutorial's "one request with N texts")."""
    samples: list[Sample] = []
    origin = time.perf_counter()
    for _ in range(repeats):
        await _timed(send, body, origin, samples)
    return LoadResult("single", 1, items, time.perf_counter() - origin, samples)


async def closed_loop(send: Send, body: bytes, concurrency: int, duration: float, items: int) -> LoadResult:
    """``concurrency`` clients sending back to back for ``duration`` s; the first 20 % (≤ 1 s) is warm-up."""
    warmup = min(1.0, duration * 0.2)
    samples: list[Sample] = []
    origin = time.perf_counter()
    stop = origin + warmup + duration

    async def client() -> None:
        while time.perf_counter() < stop:
            await _timed(send, body, origin, samples)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return _window(LoadResult("closed", concurrency, items, duration), samples, warmup, duration)


async def open_loop(
    send: Send, body: bytes, rate: float, duration: float, items: int, max_in_flight: int = 1024
) -> LoadResult:
    """Requests started every ``1/rate`` s for ``duration`` s (after warm-up), whatever the answers do.

    More than ``max_in_flight`` unanswered requests count as ``dropped`` errors instead of being sent, so
    an overloaded server cannot make the generator run out of sockets.
    """
    warmup = min(1.0, duration * 0.2)
    samples: list[Sample] = []
    origin = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    total = int((warmup + duration) * rate)
    for index in range(total):
        delay = origin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            samples.append(Sample(time.perf_counter() - origin, 0.0, DROPPED))
            continue
        task = asyncio.ensure_future(_timed(send, body, origin, samples))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    result = _window(LoadResult("open", rate, items, duration), samples, warmup, duration)
    return result


def _window(result: LoadResult, samples: list[Sample], warmup: float, duration: float) -> LoadResult:
    # Requests that started in the measured window count; those that finish after it still count, so a
    # slow tail is not cut off.
    result.samples = [s for s in samples if warmup <= s.started < warmup + duration]
    if result.mode == "closed":
        # Throughput over the time the window's requests actually took to complete.
        ends = [s.started + s.seconds for s in result.samples]
        if ends:
            result.window_s = max(duration, max(ends) - warmup)
    return result


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, also from inside a running event loop (a Jupyter kernel)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="shipyard-bench")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
