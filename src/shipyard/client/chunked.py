"""Requests of any size: split a large input into requests that fit the endpoint's limits, in order.

SageMaker cuts a real-time invocation at 6 MB and 60 s (serverless: 4 MB), so "500 texts in one request"
fails with a read time-out. :func:`invoke_all` sends any number of rows instead:

* **chunk size** from the payload limit (the encoded size of every row is known) and the time limit: a
  first small request measures the endpoint's rate, and each chunk is cut so that the work in flight
  (``concurrency`` chunks) finishes within ``time_limit × safety``; the rate is re-measured as answers come;
* **bounded concurrency** (``concurrency`` requests in flight, default 4);
* **retries** with exponential backoff and full jitter on 429, 500, 502, 503 and connection failures,
  honouring Retry-After; **413** (payload too large) or **504**/a client time-out split the chunk in two
  and lower the limits for the chunks after it;
* **order**: answers are reassembled in input order and handed to ``on_results`` (e.g. a
  :class:`~shipyard.client.rows.ResultWriter`) as soon as every row before them is answered, so a crash
  loses nothing already written and a rerun resumes.

    >>> predictions = invoke_all("http://127.0.0.1:8080", texts)             # doctest: +SKIP
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from shipyard.client.rows import JSONRows, RowFormat, read_items
from shipyard.client.transport import TIMED_OUT, UNREACHABLE, HTTPTransport, Reply, Transport, server_message
from shipyard.errors import InvokeError

__all__ = ["LIMITS", "ChunkedInvoker", "Limits", "Summary", "invoke_all", "limits_for", "should_chunk"]

_RETRY = {429, 500, 502, 503, UNREACHABLE}
_SPLIT = {413, 504, TIMED_OUT}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one invocation may carry: bytes in, seconds per answer."""

    max_payload_bytes: int = 6 * 1024 * 1024
    time_limit_s: float = 60.0

    @property
    def read_timeout_s(self) -> float:
        """How long the client waits for an answer: past the time limit, so the endpoint's own 504 comes first."""
        return self.time_limit_s + 5.0


# API Gateway's REST API in front of an endpoint (``shipyard expose``): 10 MB a request (a hard limit) and a 29 s
# integration timeout (the default; more needs a quota increase). Behind it, the lower of its limits and the
# endpoint's hold.
API_GATEWAY = Limits(10 * 1024 * 1024, 29.0)

LIMITS = {
    "realtime": Limits(6 * 1024 * 1024, 60.0),  # SageMaker real-time endpoints (and shipyard serve's defaults)
    "serverless": Limits(4 * 1024 * 1024, 60.0),  # SageMaker serverless inference
}

AUTO_CHUNK_ROWS = 64  # more rows than one server batch: split, so no request nears the time limit


def limits_for(
    name: str | None = None,
    *,
    serverless: bool = False,
    max_payload_mb: float | None = None,
    time_limit_s: float | None = None,
    behind_api: bool = False,
) -> Limits:
    """The one place an endpoint's limits are chosen: by ``name`` when given, else serverless or realtime, with
    the payload and time overrides on top; ``behind_api``: reached through its public API, whose limits
    (:data:`API_GATEWAY`) cap the endpoint's. :class:`InvokeError` for a name that is not in :data:`LIMITS`."""
    base = LIMITS.get(name or ("serverless" if serverless else "realtime"))
    if base is None:
        raise InvokeError(f"unknown limits {name!r}: use one of {', '.join(LIMITS)}")
    if behind_api:
        base = Limits(
            min(base.max_payload_bytes, API_GATEWAY.max_payload_bytes), min(base.time_limit_s, API_GATEWAY.time_limit_s)
        )
    return Limits(
        int(max_payload_mb * 1024 * 1024) if max_payload_mb else base.max_payload_bytes,
        time_limit_s or base.time_limit_s,
    )


@dataclass(slots=True)
class Summary:
    items: int = 0
    skipped: int = 0  # answered by an earlier run (resumed)
    requests: int = 0
    retries: int = 0
    splits: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)


class ChunkedInvoker:
    def __init__(
        self,
        transport: Transport,
        *,
        row_format: RowFormat | None = None,
        limits: Limits = LIMITS["realtime"],
        concurrency: int = 4,
        safety: float = 0.5,
        probe_items: int = 16,
        max_retries: int = 8,
        backoff_s: float = 0.25,
        max_backoff_s: float = 20.0,
        max_items: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise InvokeError(f"concurrency must be at least 1, got {concurrency}")
        if not 0 < safety <= 1:
            raise InvokeError(f"safety must be in (0, 1], got {safety}")
        self.transport = transport
        self.format: RowFormat = row_format or JSONRows()
        self.limits = limits
        self.concurrency = concurrency
        self.safety = safety
        self.probe_items = max(1, probe_items)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.user_max_items = max_items
        # Learned as answers come; lowered by 413 / 504.
        self._byte_budget = int(limits.max_payload_bytes * 0.95) - getattr(self.format, "overhead", 0)
        self._rate: float | None = None  # items per second the endpoint answers
        self._cap_items: int | None = None  # set by a 504 / time-out
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- public ----------------------------------------------------------------------------------
    def run(
        self,
        items: Sequence[Any],
        *,
        start: int = 0,
        on_results: Callable[[int, list[Any]], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Summary:
        """Send ``items[start:]``; ``on_results(first_index, predictions)`` is called in order."""
        total = len(items)
        summary = Summary(items=total, skipped=start)
        self._stop.clear()
        started = time.perf_counter()
        sizes = [self.format.item_size(item) for item in items] if total else []
        deliver = _InOrder(self._lock, start, total, on_results, on_progress)
        if on_progress is not None:
            on_progress(start, total)
        if start < total:
            # A first, small request measures the endpoint before the big chunks are cut.
            probe_end = self._cut(start, sizes, self.probe_items)
            probe_started = time.perf_counter()
            self._send(items, sizes, start, probe_end, deliver, summary)
            self._rate = (probe_end - start) / max(1e-6, time.perf_counter() - probe_started)
            self._send_rest(items, sizes, probe_end, deliver, summary)
        summary.seconds = time.perf_counter() - started
        return summary

    def _send_rest(
        self, items: Sequence[Any], sizes: list[int], cursor: int, deliver: _InOrder, summary: Summary
    ) -> None:
        """Chunks from ``cursor`` on, ``concurrency`` at a time, each cut to the rate measured so far."""
        total = len(items)
        phase_started, phase_items = time.perf_counter(), 0

        def take() -> tuple[int, int] | None:
            nonlocal cursor
            with self._lock:
                if cursor >= total or self._stop.is_set():
                    return None
                first = cursor
                cursor = self._cut(first, sizes, self._items_per_chunk())
                return first, cursor

        def worker() -> None:
            nonlocal phase_items
            while (span := take()) is not None:
                self._send(items, sizes, span[0], span[1], deliver, summary)
                with self._lock:
                    phase_items += span[1] - span[0]
                    elapsed = time.perf_counter() - phase_started
                    if phase_items >= 2 * self.probe_items and elapsed > 0:
                        self._rate = phase_items / elapsed  # what the endpoint sustains under this load

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="shipyard-invoke") as pool:
            futures = [pool.submit(worker) for _ in range(self.concurrency)]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                self._stop.set()
                wait(futures)
                error = failed[0].exception()
                assert error is not None
                raise _with_progress(error, deliver.emitted, total)

    # -- chunking --------------------------------------------------------------------------------
    def _items_per_chunk(self) -> int:
        count = 1 << 30
        if self._rate is not None:
            # Work in flight must finish within the time limit: `concurrency` chunks may be queued at once.
            seconds = self.limits.time_limit_s * self.safety
            count = max(1, int(self._rate * seconds / self.concurrency))
        if self._cap_items is not None:
            count = min(count, self._cap_items)
        if self.user_max_items:
            count = min(count, self.user_max_items)
        return count

    def _cut(self, first: int, sizes: list[int], max_items: int) -> int:
        """The end of a chunk starting at ``first``: at most ``max_items`` rows within the byte budget."""
        end, size, limit = first, 0, min(len(sizes), first + max_items)
        while end < limit and (end == first or size + sizes[end] <= self._byte_budget):
            size += sizes[end]
            end += 1
        return end

    # -- one chunk -------------------------------------------------------------------------------
    def _send(
        self,
        items: Sequence[Any],
        sizes: list[int],
        first: int,
        end: int,
        deliver: Callable[[int, list[Any]], None],
        summary: Summary,
    ) -> None:
        spans = [(first, end)]
        while spans:
            first, end = spans.pop(0)
            if end - first > 1 and sum(sizes[first:end]) > self._byte_budget:  # a 413 lowered the budget
                middle = first + (end - first) // 2
                spans[:0] = [(first, middle), (middle, end)]
                continue
            reply = self._post_with_retries(self.format.encode(items[first:end]), end - first, summary)
            if reply.status == 200:
                deliver(first, self.format.decode(reply.body, end - first))
                continue
            if reply.status in _SPLIT and end - first > 1:
                with self._lock:
                    summary.splits += 1
                    if reply.status == 413:
                        self._byte_budget = min(self._byte_budget, max(1, sum(sizes[first:end]) // 2))
                    else:
                        self._cap_items = max(1, min(self._cap_items or end - first, (end - first) // 2))
                middle = first + (end - first) // 2
                spans[:0] = [(first, middle), (middle, end)]
                continue
            raise InvokeError(_describe(reply, first, end), status=reply.status)

    def _post_with_retries(self, body: bytes, count: int, summary: Summary) -> Reply:
        attempt = 0
        timeout = self.limits.read_timeout_s
        while True:
            if self._stop.is_set():
                raise InvokeError("stopped: another request failed")
            reply = self.transport.post(
                body, content_type=self.format.content_type, accept=self.format.accept, timeout_s=timeout
            )
            with self._lock:
                summary.requests += 1
                summary.statuses[reply.status] = summary.statuses.get(reply.status, 0) + 1
            retry = reply.status in _RETRY or (reply.status in _SPLIT and count == 1 and reply.status != 413)
            if not retry or attempt >= self.max_retries:
                return reply
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.random()  # full jitter
            if reply.retry_after is not None:
                delay = max(delay, min(reply.retry_after, self.max_backoff_s * 3))
            attempt += 1
            with self._lock:
                summary.retries += 1
            if self._stop.wait(delay):
                raise InvokeError("stopped: another request failed")


class _InOrder:
    """Hands the answers over in input order: the contiguous prefix of what has come back, as it grows."""

    def __init__(
        self,
        lock: threading.Lock,
        start: int,
        total: int,
        on_results: Callable[[int, list[Any]], None] | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self._lock, self.emitted, self._total = lock, start, total
        self._on_results, self._on_progress = on_results, on_progress
        self._done: dict[int, tuple[int, list[Any]]] = {}

    def __call__(self, first: int, predictions: list[Any]) -> None:
        with self._lock:
            self._done[first] = (first + len(predictions), predictions)
            while self.emitted in self._done:
                end, values = self._done.pop(self.emitted)
                if self._on_results is not None:
                    self._on_results(self.emitted, values)
                self.emitted = end
            if self._on_progress is not None:
                self._on_progress(self.emitted, self._total)


def invoke_all(
    url_or_transport: str | Transport,
    items: Sequence[Any],
    *,
    row_format: RowFormat | None = None,
    limits: Limits = LIMITS["realtime"],
    concurrency: int = 4,
    on_results: Callable[[int, list[Any]], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    start: int = 0,
    **options: Any,
) -> list[Any]:
    """Predictions for every item, in order, however many there are (see the module docstring)."""
    transport = HTTPTransport(url_or_transport) if isinstance(url_or_transport, str) else url_or_transport
    results: list[Any] = []

    def collect(first: int, predictions: list[Any]) -> None:
        results.extend(predictions)
        if on_results is not None:
            on_results(first, predictions)

    invoker = ChunkedInvoker(transport, row_format=row_format, limits=limits, concurrency=concurrency, **options)
    try:
        invoker.run(items, start=start, on_results=collect, on_progress=on_progress)
    finally:
        if isinstance(url_or_transport, str):
            transport.close()
    return results


def _describe(reply: Reply, first: int, end: int) -> str:

    rows = f"rows {first}–{end - 1}" if end - first > 1 else f"row {first}"
    if reply.status == 413:
        return f"{rows}: a single row is larger than the endpoint accepts (413): {server_message(reply.body)}"
    return f"{rows}: {reply.status} {server_message(reply.body)}"


def _with_progress(error: BaseException, answered: int, total: int) -> BaseException:
    if isinstance(error, InvokeError):
        message = f"{error} ({answered} of {total} rows were answered before it; rerun to resume)"
        return InvokeError(message, status=error.status)
    return error


def should_chunk(body: bytes, content_type: str, limits: Limits, output: object | None) -> list[Any] | None:
    """The rows to send in chunks, or None when the body goes as one request. ``output`` is where the answers
    are written, if anywhere: writing them always splits."""
    if output is None and len(body) < limits.max_payload_bytes * 0.9 and len(body) < 64 * 1024:
        # Small bodies (the usual hand-written request) keep the single-request path and its exact answer.
        try:
            rows = read_items(body, content_type)
        except InvokeError:
            return None
        if all(isinstance(row, int | float) for row in rows):
            return None  # a flat list of numbers may be one row sent bare: split only when asked (--chunk)
        return rows if len(rows) > AUTO_CHUNK_ROWS else None
    try:
        return read_items(body, content_type)
    except InvokeError:
        if output is not None:
            raise
        return None
