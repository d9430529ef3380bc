"""Request timeouts with one timer for all in-flight requests.

Every invocation waits for the model with the same timeout (``SAGEMAKER_MODEL_SERVER_TIMEOUT``), so
deadlines expire in the order requests arrive. A FIFO of ``(deadline, future)`` and a single timer armed
for the oldest pending deadline therefore replace a timer per request: ``asyncio.timeout`` costs about
13 µs a request (a ``Timeout`` object, a timer handle, task bookkeeping), an append well under 1 µs.

A request that runs out of time gets its future failed with the error ``make_error()`` builds; the
batcher skips futures that are already done, so a request that timed out while queued never reaches
the model.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self, timeout: float, make_error: Callable[[], BaseException]) -> None:
        self.timeout = timeout
        self._make_error = make_error
        self._pending: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def watch(self, future: asyncio.Future[Any]) -> None:
        """Fail ``future`` with the timeout error unless it is done within ``timeout`` seconds from now."""
        pending = self._pending
        # Answers come back in about the order requests arrived: dropping the finished ones at the head
        # keeps the FIFO as long as the number of requests in flight.
        while pending and pending[0][1].done():
            pending.popleft()
        loop = future.get_loop()
        pending.append((loop.time() + self.timeout, future))
        if self._timer is None:
            self._timer = loop.call_at(pending[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        pending = self._pending
        now = loop.time()
        while pending:
            deadline, future = pending[0]
            if future.done():
                pending.popleft()
            elif deadline <= now:
                pending.popleft()
                future.set_exception(self._make_error())
            else:
                self._timer = loop.call_at(deadline, self._expire, loop)
                return

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
