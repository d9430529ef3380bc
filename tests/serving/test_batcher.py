"""The adaptive batcher: stacking, splitting back, limits, delay, error isolation, back-pressure."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from shipyard.errors import ModelError, Overloaded, SchemaMismatch
from shipyard.handler import split, stack
from shipyard.serving.batcher import Batcher, BatchStats


class Model:
    """Doubles its input; records every call; can be held (to let a queue build up) and made to fail."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.copy())
        self.entered.set()
        self.gate.wait(10)
        if (batch < 0).any():
            raise ValueError("negative input")
        return batch[:, 0] * 2

    @property
    def batch_rows(self) -> list[int]:
        return [len(call) for call in self.calls]


def rows(*values: float) -> np.ndarray:
    return np.array([[v] for v in values], dtype=np.float64)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


async def wait_entered(model: Model) -> None:
    """Until the model thread is inside a call (so what is submitted next has to queue)."""
    while not model.entered.is_set():
        await asyncio.sleep(0.001)


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=64)
        model.hold()
        first = batcher.submit(rows(0), 1)
        await wait_entered(model)
        futures = [batcher.submit(rows(i, i + 0.5), 2) for i in range(1, 6)]
        model.release()
        assert (await first).tolist() == [0]
        for i, future in enumerate(futures, start=1):
            assert (await future).tolist() == [2 * i, 2 * i + 1]
        await batcher.close()

    run(test)
    assert model.batch_rows == [1, 10]  # the five queued requests went in one stacked call, in order
    np.testing.assert_array_equal(model.calls[1][:, 0], [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5])


def test_max_rows_is_respected() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=7)
        model.hold()
        first = batcher.submit(rows(0), 1)
        await wait_entered(model)
        futures = [batcher.submit(rows(i, i, i), 3) for i in range(1, 7)]
        big = batcher.submit(rows(*range(10)), 10)  # larger than max_rows on its own: goes alone
        model.release()
        await first
        results = [await future for future in futures]
        assert [r.tolist() for r in results] == [[2 * i] * 3 for i in range(1, 7)]
        assert (await big).tolist() == [2 * i for i in range(10)]
        await batcher.close()

    run(test)
    assert model.batch_rows == [1, 6, 6, 6, 10]


def test_max_requests_one_never_stacks() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=64, max_requests=1)
        model.hold()
        futures = [batcher.submit(rows(i), 1) for i in range(4)]
        model.release()
        assert [(await f).tolist() for f in futures] == [[0], [2], [4], [6]]
        await batcher.close()

    run(test)
    assert model.batch_rows == [1, 1, 1, 1]


def test_a_lone_request_is_not_held_back() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=64, max_delay=0.0)
        first = batcher.submit(rows(1), 1)
        await asyncio.sleep(0.3)
        assert first.done()  # answered without waiting for company
        second = batcher.submit(rows(2), 1)
        assert (await first).tolist() == [2]
        assert (await second).tolist() == [4]
        await batcher.close()

    run(test)
    assert model.batch_rows == [1, 1]


def test_max_delay_waits_for_more_requests() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=64, max_delay=1.0)
        first = batcher.submit(rows(1), 1)
        await asyncio.sleep(0.1)
        assert not first.done()  # held for company, within max_delay
        second = batcher.submit(rows(2), 1)
        assert (await first).tolist() == [2]
        assert (await second).tolist() == [4]
        await batcher.close()

    run(test)
    assert model.batch_rows == [2]


def test_max_delay_ends_early_when_the_batch_is_full() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=2, max_delay=30.0)
        started = time.monotonic()
        futures = [batcher.submit(rows(1), 1), batcher.submit(rows(2), 1)]
        await asyncio.gather(*futures)
        assert time.monotonic() - started < 10  # far below the 30 s delay: a full batch goes at once
        await batcher.close()

    run(test)
    assert model.batch_rows == [2]


def test_one_bad_request_fails_only_itself() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_rows=64)
        model.hold()
        first = batcher.submit(rows(0), 1)
        await wait_entered(model)
        good1 = batcher.submit(rows(1), 1)
        bad = batcher.submit(rows(-1), 1)
        good2 = batcher.submit(rows(3, 4), 2)
        model.release()
        await first
        assert (await good1).tolist() == [2]
        assert (await good2).tolist() == [6, 8]
        with pytest.raises(ModelError, match="the model raised ValueError: negative input") as info:
            await bad
        assert isinstance(info.value.__cause__, ValueError)
        assert info.value.http_status == 500
        await batcher.close()

    run(test)
    assert model.batch_rows == [1, 4, 1, 1, 2]  # the stacked call failed; each request was retried alone


def test_shipyard_errors_from_the_model_keep_their_status() -> None:
    def predict(batch: Any) -> Any:
        raise SchemaMismatch("the model says the input is wrong")

    async def test() -> None:
        batcher = Batcher(predict, stack, split)
        with pytest.raises(SchemaMismatch, match="the model says"):
            await batcher.submit(rows(1), 1)
        await batcher.close()

    run(test)


def test_wrong_prediction_count_is_retried_alone() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        gate.wait(10)
        return batch[:1, 0]  # always one prediction, whatever the batch

    async def test() -> None:
        batcher = Batcher(predict, stack, split)
        first = batcher.submit(rows(9), 1)
        while not calls:
            await asyncio.sleep(0.001)
        futures = [batcher.submit(rows(i), 1) for i in range(3)]
        gate.set()
        await first
        assert [(await f).tolist() for f in futures] == [[0], [1], [2]]
        await batcher.close()

    run(test)
    assert calls == [1, 3, 1, 1, 1]


def test_full_queue_is_overloaded() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, max_queue=2)
        model.hold()
        running = batcher.submit(rows(0), 1)
        await wait_entered(model)
        queued = [batcher.submit(rows(1), 1), batcher.submit(rows(2), 1)]
        with pytest.raises(Overloaded, match="2 requests are already waiting") as info:
            batcher.submit(rows(3), 1)
        assert info.value.http_status == 503
        model.release()
        await asyncio.gather(running, *queued)
        assert (await batcher.submit(rows(4), 1)).tolist() == [8]  # room again once the queue drained
        await batcher.close()

    run(test)


def test_abandoned_requests_are_skipped() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split)
        model.hold()
        first = batcher.submit(rows(0), 1)
        await wait_entered(model)
        gone = batcher.submit(rows(100), 1)
        kept = batcher.submit(rows(5), 1)
        gone.cancel()  # what a time-out or a client that went away does
        model.release()
        await first
        assert (await kept).tolist() == [10]
        await batcher.close()

    run(test)
    assert all(100 not in call for call in model.calls)


def test_the_event_loop_runs_while_the_model_computes() -> None:
    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split)
        model.hold()
        future = batcher.submit(rows(1), 1)
        await wait_entered(model)
        ticks = 0
        for _ in range(20):  # the loop keeps turning while the model thread is busy
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 20
        assert not future.done()
        model.release()
        assert (await future).tolist() == [2]
        await batcher.close()

    run(test)


def test_stats_hooks() -> None:
    seen: dict[str, list[Any]] = {"batch": [], "queue": []}

    class Stats(BatchStats):
        def batch(self, requests: int, rows: int, seconds: float) -> None:
            seen["batch"].append((requests, rows, seconds >= 0))

        def queue(self, depth: int) -> None:
            seen["queue"].append(depth)

    model = Model()

    async def test() -> None:
        batcher = Batcher(model, stack, split, stats=Stats())
        model.hold()
        first = batcher.submit(rows(0), 1)
        await wait_entered(model)
        others = [batcher.submit(rows(1, 2), 2), batcher.submit(rows(3), 1)]
        assert batcher.depth == 2
        model.release()
        await asyncio.gather(first, *others)
        await batcher.close()

    run(test)
    assert seen["batch"] == [(1, 1, True), (2, 3, True)]
    assert seen["queue"] == [0, 0]


def test_stack_and_split_dataframes_and_lists() -> None:
    import pandas as pd

    frames = [pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3]})]
    stacked = stack(frames)
    assert stacked["a"].tolist() == [1, 2, 3]
    pieces = split(pd.Series([10, 20, 30]), [2, 1])
    assert [p.tolist() for p in pieces] == [[10, 20], [30]]
    assert stack([["x"], ["y", "z"]]) == ["x", "y", "z"]
    assert split(["p", "q", "r"], [1, 2]) == [["p"], ["q", "r"]]
    with pytest.raises(ValueError, match="returned 2 predictions for 3 rows"):
        split([1, 2], [1, 2])
