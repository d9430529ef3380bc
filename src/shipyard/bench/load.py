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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from shipyard.client.transport import Transport

__all__ = [
    "HTTPSender",
    "LoadResult",
    "RawHTTPSender",
    "Sample",
    "TransportSender",
    "closed_loop",
    "open_loop",
    "percentile",
    "run_sync",
    "sender_for",
    "sequential",
]

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

    def __init__(self, url: str, *, content_type: str = "application/json", timeout_s: float = 65.0) -> None:
        from shipyard.client.transport import base_url

        self.url = f"{base_url(url)}/invocations"
        self.headers = {"content-type": content_type}
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HTTPSender:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1024)
        self._client = httpx.AsyncClient(limits=limits, timeout=self.timeout_s)
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


class RawHTTPSender:
    """A lean HTTP/1.1 keep-alive client for plain ``http://`` URLs: one connection per concurrent caller.

    It writes a pre-built request and reads the status line, the headers and a Content-Length body:
    about a tenth of httpx's CPU per request, so at high request rates the figures measure the server, not
    the load generator. Anything it does not speak (TLS, chunked answers) is for :class:`HTTPSender`.
    """

    def __init__(self, url: str, *, content_type: str = "application/json", timeout_s: float = 65.0) -> None:
        from urllib.parse import urlsplit

        from shipyard.client.transport import base_url

        parts = urlsplit(f"{base_url(url)}/invocations")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"RawHTTPSender speaks plain http only, not {url}")
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path
        self.head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\nContent-Length: "
        ).encode()
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> RawHTTPSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def __call__(self, body: bytes) -> int:
        if self._idle:
            status = await self._send(body, self._idle.pop())
            if status != UNREACHABLE:
                return status
            # the server may have closed an idle keep-alive connection: one more try on a new one
        return await self._send(body, None)

    async def _send(self, body: bytes, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> int:
        try:
            if connection is None:
                connection = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
            reader, writer = connection
            writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status, close = await asyncio.wait_for(self._answer(reader), self.timeout_s)
        except TimeoutError:
            if connection is not None:
                connection[1].close()
            return TIMED_OUT
        except (OSError, ValueError, asyncio.IncompleteReadError):
            if connection is not None:
                connection[1].close()
            return UNREACHABLE
        if close:
            writer.close()
        else:
            self._idle.append(connection)
        return status

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers need HTTPSender")
        await reader.readexactly(length)
        return status, close


class TransportSender:
    """Requests through a blocking :class:`~shipyard.client.transport.Transport` (SageMaker's InvokeEndpoint
    through boto3), on ``threads`` threads: at most that many requests are in flight, and a request that
    waits for a free thread counts that wait in its latency, as a caller limited to that many would see."""

    def __init__(
        self, transport: Transport, *, threads: int, content_type: str = "application/json", timeout_s: float = 65.0
    ) -> None:
        self.transport = transport
        self.threads = max(1, threads)
        self.content_type = content_type
        self.timeout_s = timeout_s
        self._pool: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> TransportSender:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bench-send")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def __call__(self, body: bytes) -> int:
        assert self._pool is not None, "use `async with TransportSender(...) as send`"
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._post, body)

    def _post(self, body: bytes) -> int:
        return self.transport.post(body, content_type=self.content_type, accept=None, timeout_s=self.timeout_s).status


def sender_for(url: str, *, timeout_s: float = 65.0) -> HTTPSender | RawHTTPSender:
    """The lean sender for plain http, httpx for anything else."""
    if url.startswith("https://"):
        return HTTPSender(url, timeout_s=timeout_s)
    return RawHTTPSender(url, timeout_s=timeout_s)


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
