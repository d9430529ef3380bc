"""Deadlines: one timer for every in-flight request (serving/deadlines.py), on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from shipyard.errors import InferenceTimeout
from shipyard.serving.deadlines import Deadlines


def _deadlines(timeout: float) -> Deadlines:
    return Deadlines(timeout, lambda: InferenceTimeout(f"no answer within {timeout:g} s"))


def test_a_late_future_fails_with_the_timeout_error() -> None:
    async def main() -> None:
        deadlines = _deadlines(0.05)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        deadlines.watch(future)
        with pytest.raises(InferenceTimeout, match=r"no answer within 0\.05 s"):
            await asyncio.wait_for(future, 2)

    asyncio.run(main())


def test_futures_answered_in_time_are_left_alone_and_later_ones_still_expire() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = _deadlines(0.1)
        early: asyncio.Future[str] = loop.create_future()
        deadlines.watch(early)
        await asyncio.sleep(0.05)
        late: asyncio.Future[str] = loop.create_future()
        deadlines.watch(late)  # its deadline is 50 ms after the first one's
        early.set_result("answered")
        await asyncio.sleep(0.07)  # past the first deadline, before the second
        assert early.result() == "answered"
        assert not late.done()
        with pytest.raises(InferenceTimeout):
            await asyncio.wait_for(late, 2)
        assert len(deadlines) == 0

    asyncio.run(main())


def test_answered_requests_do_not_pile_up() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = _deadlines(60)
        for _ in range(1000):
            future: asyncio.Future[int] = loop.create_future()
            deadlines.watch(future)
            future.set_result(1)
        assert len(deadlines) <= 1  # finished ones are dropped from the head as new ones arrive
        deadlines.close()
        assert len(deadlines) == 0

    asyncio.run(main())


def test_a_cancelled_future_is_not_failed_again() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = _deadlines(0.02)
        future: asyncio.Future[int] = loop.create_future()
        deadlines.watch(future)
        future.cancel()
        await asyncio.sleep(0.05)  # the timer fires on a done future: nothing to do, no error
        assert future.cancelled()
        assert len(deadlines) == 0

    asyncio.run(main())
