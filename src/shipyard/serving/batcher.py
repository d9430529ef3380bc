"""Adaptive batching: concurrent requests share one model call.

Requests queue up while the model is busy; when it is free, the batcher takes everything queued (up to
``max_rows`` rows and ``max_requests`` requests) and calls the model once on the stacked inputs. A lone
request therefore never waits for company: batches grow exactly as fast as load does. An optional
``max_delay`` holds a non-full batch that long for more requests (useful when a model call costs much
more per call than per row).

Model calls are made from a dedicated thread, so the event loop keeps answering ``/ping`` and parsing
requests while a long prediction runs. Batches go to that thread through a ``queue.SimpleQueue`` and come
back with ``call_soon_threadsafe``: a round trip costs about a third of ``run_in_executor``'s (no
``concurrent.futures.Future``, no condition variables), and a lone request pays it in full. The thread
hands each batch to a :class:`~shipyard.serving.compute.Compute`: the model in this thread, or in a child
process (the server's default; see :mod:`shipyard.serving.compute`). If a stacked call raises, each
request of the batch is retried alone, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.errors import Overloaded
from shipyard.serving.compute import Compute, InlineCompute

__all__ = ["BatchStats", "Batcher"]

log = logging.getLogger("shipyard.batcher")


@dataclass(slots=True)
class _StreamJob:
    """A streamed request: alone through the model thread, never queued for a batch (see ``stream``)."""

    inputs: Any
    emit: Callable[[Any], None]
    stop: threading.Event
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Item:
    inputs: Any
    rows: int
    future: asyncio.Future[Any]


class BatchStats:
    """Hooks the batcher calls; the server wires them to Prometheus."""

    def batch(self, requests: int, rows: int, seconds: float) -> None: ...

    def queue(self, depth: int) -> None: ...


class Batcher:
    def __init__(
        self,
        predict: Callable[[Any], Any],
        stack: Callable[[list[Any]], Any],
        split: Callable[[Any, list[int]], list[Any]],
        *,
        max_rows: int = 64,
        max_requests: int | None = None,
        max_delay: float = 0.0,
        max_queue: int = 2048,
        stats: BatchStats | None = None,
        compute: Compute | None = None,
        idle_check_s: float = 0.5,
    ) -> None:
        self._compute_with = compute or InlineCompute(predict, stack, split)
        self.idle_check_s = idle_check_s
        self.max_rows = max_rows
        self.max_requests = max_requests or max_rows
        self.max_delay = max_delay
        self.max_queue = max_queue
        self._stats = stats or BatchStats()
        self._queue: deque[_Item] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._jobs: queue.SimpleQueue[tuple[list[_Item], asyncio.Future[Any]] | _StreamJob | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.busy = False

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, inputs: Any, rows: int) -> asyncio.Future[Any]:
        """Queue one request; the future resolves to its predictions (or its own exception)."""
        if len(self._queue) >= self.max_queue:
            raise Overloaded(f"{len(self._queue)} requests are already waiting for the model")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Item(inputs, rows, future))
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        if not self.busy:
            assert self._wake is not None
            self._wake.set()
        return future

    def stream(self, inputs: Any, emit: Callable[[Any], None], stop: threading.Event) -> asyncio.Future[Any]:
        """One streamed request, straight to the model thread (no batch, no batch queue): ``emit(chunk)`` is
        called in the model thread for each chunk as the model yields it; the future resolves to
        ``(ok, error-or-None)`` when the stream is over. Setting ``stop`` ends it after the current chunk."""
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._start_thread(loop, None)
        done: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_StreamJob(inputs, emit, stop, done))
        return done

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.max_delay > 0 and self._rows_queued() < self.max_rows:
                await self._fill(loop.time() + self.max_delay)
            batch = self._take()
            if not batch:
                continue
            self._stats.queue(len(self._queue))
            self.busy = True
            try:
                outcomes = await self._in_model_thread(loop, batch)
            except BaseException as exc:  # the batcher is closing: fail the batch
                outcomes = [(False, exc)] * len(batch)
            finally:
                self.busy = False
            for item, (ok, value) in zip(batch, outcomes, strict=True):
                if item.future.done():  # timed out or the client went away
                    continue
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(value)

    def _rows_queued(self) -> int:
        return sum(item.rows for item in self._queue)

    async def _fill(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while self._rows_queued() < self.max_rows and len(self._queue) < self.max_requests:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            assert self._wake is not None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        queue = self._queue
        while queue and len(batch) < self.max_requests:
            item = queue[0]
            if batch and rows + item.rows > self.max_rows:
                break
            queue.popleft()
            if item.future.done():
                continue
            batch.append(item)
            rows += item.rows
        return batch

    def start(self, on_started: Callable[[BaseException | None, float], None]) -> None:
        """Start the model thread now and have it start the compute (load the model, fork its process);
        ``on_started(error, seconds)`` is called on the event loop when that is done."""
        self._start_thread(asyncio.get_running_loop(), on_started)

    def _start_thread(
        self, loop: asyncio.AbstractEventLoop, on_started: Callable[[BaseException | None, float], None] | None
    ) -> None:
        self._thread = threading.Thread(
            target=self._model_thread, args=(loop, on_started), name="shipyard-model", daemon=True
        )
        self._thread.start()

    def _in_model_thread(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> asyncio.Future[Any]:
        if self._thread is None:
            self._start_thread(loop, None)
        done: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((batch, done))
        return done

    # -- in the model thread -------------------------------------------------------------------------
    def _model_thread(
        self, loop: asyncio.AbstractEventLoop, on_started: Callable[[BaseException | None, float], None] | None
    ) -> None:
        compute = self._compute_with
        if on_started is not None:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                compute.start()
            except BaseException as exc:
                error = exc
            try:
                loop.call_soon_threadsafe(on_started, error, time.perf_counter() - started)
            except RuntimeError:  # the event loop is closed
                return
            if error is not None:
                return
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=self.idle_check_s)
                except queue.Empty:
                    compute.check()
                    continue
                if job is None:
                    return
                if isinstance(job, _StreamJob):
                    try:
                        streamed: Any = compute.stream(job.inputs, job.emit, job.stop)
                    except BaseException as exc:
                        streamed = (False, exc)
                    try:
                        loop.call_soon_threadsafe(_deliver, job.done, streamed)
                    except RuntimeError:
                        return
                    continue
                batch, done = job
                try:
                    outcome: Any = self._compute(batch)
                except BaseException as exc:  # the compute catches Exceptions per request; this is anything else
                    outcome = exc
                try:
                    loop.call_soon_threadsafe(_deliver, done, outcome)
                except RuntimeError:  # the event loop is closed: nobody is waiting any more
                    return
        finally:
            compute.close()

    def _compute(self, batch: list[_Item]) -> list[tuple[bool, Any]]:
        started = time.perf_counter()
        try:
            return self._compute_with.run([item.inputs for item in batch], [item.rows for item in batch])
        finally:
            self._stats.batch(len(batch), sum(item.rows for item in batch), time.perf_counter() - started)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._jobs.put(None)  # the model thread exits after the batch it is running, if any


def _deliver(done: asyncio.Future[Any], outcome: Any) -> None:
    if done.done():  # the waiting task was cancelled (the batcher is closing)
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
