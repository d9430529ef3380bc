"""JSON logs on stdout (CloudWatch reads the container's stdout), one line per request.

Three rules keep logging from ever hurting serving:

* **Nothing on the request path blocks on stdout.** Every line goes to this process's :func:`output`, a
  bounded queue that one thread writes out. A stdout nobody reads (a stuck log shipper,
  ``shipyard serve … | sleep 600``) fills the queue, and further lines are dropped and counted
  (``shipyard_log_lines_dropped_total``), then reported in one line once stdout drains.
* **Lines never interleave.** Only the supervisor writes to the real stdout. Each worker's stdout and
  stderr are a pipe to it (:class:`Relay`), each model process's a pipe to its worker; every hop passes
  whole lines, so a handler printing megabytes cannot split a JSON line, whatever stdout is.
* **Access lines are cheap:** buffered and handed over once per event-loop turn, a few microseconds per
  request instead of a system call each.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from shipyard.errors import StreamAborted

__all__ = ["AccessLog", "JSONFormatter", "Output", "Relay", "flush_logs", "output", "pass_lines", "setup_logging"]

_QUEUE_BYTES = 1 << 20  # lines waiting for stdout (seconds of them at full load); more are dropped
_LONGEST_LINE = 1 << 18  # a longer line is passed on in pieces (CloudWatch Logs' largest event is 256 KB)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class Output:
    """This process's stdout as a bounded queue of whole lines written by one thread: :meth:`write` never
    blocks. ``on_drop(n)`` is told of every ``n`` lines dropped because the queue was full."""

    def __init__(self, fd: int = 1, max_bytes: int = _QUEUE_BYTES) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self.dropped = 0
        self.on_drop: Callable[[int], None] | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._unreported = 0
        self._writing = False
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Queue ``data`` (whole lines, each ending in a newline); False if it was dropped. The event loop
        never waits; a relay thread may wait up to ``wait_s`` for room (the writer is merely slower than
        its producer then, not stuck)."""
        with self._cond:
            if wait_s > 0 and self._size + len(data) > self.max_bytes and self._size:
                deadline = time.monotonic() + wait_s
                while self._size + len(data) > self.max_bytes and self._size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            if self._size + len(data) > self.max_bytes and self._size:
                lines = data.count(b"\n") or 1
                self.dropped += lines
                self._unreported += lines
                dropped = True
            else:
                self._chunks.append(data)
                self._size += len(data)
                dropped = False
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="shipyard-output", daemon=True)
                    self._thread.start()
                self._cond.notify()
        if dropped and self.on_drop is not None:
            self.on_drop(data.count(b"\n") or 1)
        return not dropped

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything queued is written (at most ``timeout`` seconds); True if it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._chunks or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks:
                    self._cond.wait()
                data = b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
                unreported, self._unreported = self._unreported, 0
                self._writing = True
                self._cond.notify_all()  # room again for a relay waiting to queue
            try:
                _write_all(self.fd, data)
                if unreported:  # stdout drains again: say what it cost
                    _write_all(self.fd, _dropped_line(unreported))
            except OSError:
                pass  # stdout is gone (closed pipe): nothing to write to, nothing to block on
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()


def _dropped_line(count: int) -> bytes:
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "level": "WARNING",
        "logger": "shipyard.logs",
        "message": f"{count} log lines were dropped: stdout was not being read",
        "dropped": count,
        "pid": os.getpid(),
    }
    return orjson.dumps(entry) + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # someone made the descriptor non-blocking: wait for room
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(1000)
            continue
        except InterruptedError:
            continue
        view = view[written:]


_output: Output | None = None


def output() -> Output:
    """This process's :class:`Output` (a new one after a fork)."""
    global _output
    if _output is None:
        _output = Output()
    return _output


def _forget_output() -> None:
    global _output
    _output = None  # its thread and lock are the parent's


os.register_at_fork(after_in_child=_forget_output)


_flush_at_exit = False


class _OutputHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        output().write(line.encode("utf-8", "backslashreplace") + b"\n")


def setup_logging(level: str = "INFO") -> None:
    global _flush_at_exit
    if not _flush_at_exit:  # what is still queued at exit (a forked worker flushes itself: it ends with os._exit)
        atexit.register(flush_logs)
        _flush_at_exit = True
    handler = _OutputHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    if not any(isinstance(f, _StreamAbortedFilter) for f in logging.getLogger("uvicorn.error").filters):
        logging.getLogger("uvicorn.error").addFilter(_StreamAbortedFilter())


class _StreamAbortedFilter(logging.Filter):
    """uvicorn's "Exception in ASGI application" for a stream broken on purpose (StreamAborted): the server
    logged that stream's error already, the traceback would only repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StreamAborted))


def flush_logs(timeout: float = 2.0) -> None:
    """Write out what is queued (at exit): at most ``timeout`` seconds, stdout may be stuck."""
    if _output is not None:
        _output.flush(timeout)
    with contextlib.suppress(Exception):
        sys.stdout.flush()


class AccessLog:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lines: list[bytes] = []
        self._scheduled = False
        self._pid = os.getpid()

    def write(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        entry["pid"] = self._pid
        self._lines.append(orjson.dumps(entry) + b"\n")
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        output().write(data)


def pass_lines(pending: bytes, chunk: bytes, write: Callable[[bytes], object]) -> bytes:
    """``chunk`` read after ``pending``: every complete line goes to ``write``, and a rest of
    ``_LONGEST_LINE`` bytes or more as a line of its own; returns the rest still waiting for its newline."""
    pending += chunk
    cut = pending.rfind(b"\n") + 1
    if cut:
        write(pending[:cut])
        pending = pending[cut:]
    if len(pending) >= _LONGEST_LINE:
        write(pending + b"\n")
        pending = b""
    return pending


class Relay:
    """The supervisor's side of its workers' stdout and stderr: pipes read by one thread, passed on whole
    lines at a time to this process's :func:`output` (the only writer of the real stdout)."""

    def __init__(self) -> None:
        self._pending: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="shipyard-relay", daemon=True)
        self._stopping = False
        self._thread.start()

    def pipe(self) -> tuple[int, int]:
        """A new pipe to relay: returns ``(read_fd, write_fd)``; the caller gives the write end to a child
        (and closes it here once the child has it)."""
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        with self._lock:
            self._pending[read_fd] = b""
        os.write(self._wake_w, b"x")
        return read_fd, write_fd

    def close(self, timeout: float = 2.0) -> None:
        """Relay what the pipes still hold (their writers have exited), then stop."""
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout)

    def _run(self) -> None:
        out = output()

        def write(data: bytes) -> bool:
            return out.write(data, wait_s=1.0)

        while True:
            with self._lock:
                fds = list(self._pending)
            poller = select.poll()
            for fd in (self._wake_r, *fds):
                poller.register(fd, select.POLLIN)
            try:
                ready = [fd for fd, _ in poller.poll(500)]
            except OSError:
                ready = []
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
                if self._stopping and not [fd for fd in ready if fd != self._wake_r]:
                    self._drain_all(write)
                    return
            for fd in ready:
                if fd != self._wake_r:
                    self._read(fd, write)

    def _read(self, fd: int, write: Callable[[bytes], bool]) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            chunk = b""
        with self._lock:
            if not chunk:  # every writer is gone
                pending = self._pending.pop(fd, b"")
                os.close(fd)
                if pending:
                    write(pending + b"\n")
                return
            self._pending[fd] = pass_lines(self._pending.get(fd, b""), chunk, write)

    def _drain_all(self, write: Callable[[bytes], bool]) -> None:
        with self._lock:
            fds = list(self._pending)
        for fd in fds:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while fd in self._pending and poller.poll(0):
                self._read(fd, write)
