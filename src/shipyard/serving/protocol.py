"""The server's edge: uvicorn's httptools protocol with limits, and JSON for every answer it writes itself.

uvicorn parses HTTP in :class:`HttpToolsProtocol` and answers a few requests without the application: a
malformed request (400), a request cut off by the graceful shutdown (500) and an application that failed
before answering (500), all in ``text/plain``. :class:`EdgeProtocol` keeps uvicorn's parser and request
cycle and changes what happens at the edge:

* **Request heads are capped** at ``SHIPYARD_MAX_HEADER_BYTES`` (request line and headers together). The
  bytes received before the head is complete are counted as they arrive and the parser is never fed past
  the cap: ``431`` and the connection closes. Unlimited, a 64 MB header took seconds of parsing (the
  parser joins header fragments, quadratic in their number) while every other connection of the worker
  waited.
* **A connection must send a complete request head in time**: within ``SHIPYARD_HEADER_TIMEOUT`` seconds of
  connecting, and within the keep-alive time (75 s) of the previous answer on a connection kept alive. A
  connection that sent nothing is closed; one that sent part of a head gets ``408``. Before, a connection
  that never sent a byte stayed open forever, and one that sent its head a byte at a time was never timed
  out. Both deadlines are uvicorn's keep-alive timer handle: one timer per request, as before.
* **Connections are capped per worker** (``SHIPYARD_MAX_CONNECTIONS``; by default from the open-file limit,
  see :func:`default_max_connections`): a connection over the cap is answered ``503`` with ``Retry-After``
  and closed, instead of the worker running out of file descriptors and ceasing to accept anyone.
* **Every answer is JSON** in the server's error shape, ``{"error": ..., "message": ...}``: a malformed
  request is ``400``, a request the graceful shutdown (``SHIPYARD_GRACEFUL_TIMEOUT``) cut off is ``503``
  with ``Retry-After: 1`` (another instance can take it), an application failure ``500``.

An error answer written here is followed by a *lingering close*: the write side is shut, and what the client
still sends is read and dropped for up to :data:`LINGER_S`, so the client reads the answer instead of a
connection reset (closing a socket with unread data makes the kernel send a reset, which can destroy the
answer before the client reads it).

The per-request cost is a few attribute reads and writes: the byte count is one subtraction per chunk
received while a head is incomplete, and the header deadline reuses the keep-alive timer. uvicorn's
``on_headers_complete``, ``on_body`` and ``on_message_complete`` are rewritten here rather than extended
(a ``super()`` call per callback, or giving each request cycle another class afterwards, cost about 1 µs a
request); tests/serving/test_edge.py fails when uvicorn changes the methods this module rewrites or relies
on. Not kept from uvicorn: WebSockets (an ``Upgrade`` is ignored) and ``limit_concurrency`` (the connection
cap replaces it). A head counts from the first chunk received after the previous request ended, so a head
pipelined in the same chunk as the end of the request before it may pass the cap by at most that chunk
(one read, 256 KiB): still a bound.

:func:`raise_open_files_limit` raises the soft ``RLIMIT_NOFILE`` to the hard limit; the supervisor calls it
at start (a worker calls it too, which is a no-op once the supervisor has).
"""

from __future__ import annotations

import asyncio
import http
import logging
import resource
import time
import urllib.parse
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from shipyard.config import ServerConfig

__all__ = [
    "LINGER_S",
    "EdgeProtocol",
    "default_max_connections",
    "error_body",
    "protocol_for",
    "raise_open_files_limit",
]

log = logging.getLogger("shipyard.server")

LINGER_S = 1.0  # how long an error answer's connection is drained before it is closed
_OVER_CAP_LINGER_S = 0.25  # the same for a connection over the cap: its request, if any, is already on its way
_FD_RESERVE = 64  # descriptors a worker keeps for itself (model files, logs, metrics files, epoll, pipes)
_MAX_DEFAULT_CONNECTIONS = 65536  # the automatic cap's ceiling, whatever the open-file limit


def error_body(code: str, message: str) -> bytes:
    """The server's error answer: ``{"error": CODE, "message": TEXT}``."""
    return orjson.dumps({"error": code, "message": message})


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit; the (soft, hard) limits in force after.

    Containers commonly start with a soft limit of 1024 and a far higher hard limit: every connection is a
    descriptor, so 1024 is what a worker could hold. Raising the soft limit needs no privilege. An unlimited
    hard limit is raised to the kernel's ``fs.nr_open`` (Linux refuses more). Failing to raise is not fatal:
    the limits stay as they were.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:
        target = _nr_open()
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. macOS caps the soft limit below an unlimited hard one
            return soft, hard
        return target, hard
    return soft, hard


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def default_max_connections(soft_limit: int | None = None) -> int:
    """The automatic ``SHIPYARD_MAX_CONNECTIONS``: a worker's open-file limit less what it needs for itself.

    Each worker is a process with its own descriptor table and its own limit, so the cap is per worker and
    not divided among them. The reserve is an eighth of the limit, at least 64; the cap is at most 65,536
    (a connection also costs memory) and at least 16.
    """
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY:
        return _MAX_DEFAULT_CONNECTIONS
    reserve = max(_FD_RESERVE, soft_limit // 8)
    return max(16, min(_MAX_DEFAULT_CONNECTIONS, soft_limit - reserve))


def protocol_for(config: ServerConfig) -> type[EdgeProtocol]:
    """The protocol class uvicorn should use (``uvicorn.Config(http=...)``), with ``config``'s limits.

    Call it in the worker, after :func:`raise_open_files_limit`: the automatic connection cap is read from
    the open-file limit in force when it is called.
    """
    cap = config.max_connections or default_max_connections()
    attributes = {
        "max_head_bytes": config.max_header_bytes,
        "header_timeout": config.header_timeout_s,
        "max_connections": cap,
    }
    return type("EdgeProtocol", (EdgeProtocol,), attributes)


class _Throttled:
    """A warning logged at most once a second per reason, with how many were not logged in between."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, reason: str, message: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        last, skipped = self._last.get(reason, (0.0, 0))
        if now - last < 1.0:
            self._last[reason] = (last, skipped + 1)
            return
        self._last[reason] = (now, 0)
        if skipped:
            fields = {**fields, "not_logged_since_last": skipped}
        log.warning(message, extra={"fields": fields})


_warnings = _Throttled()


def _head(status: int, default_headers: list[tuple[bytes, bytes]], extra: bytes) -> bytes:
    phrase = http.HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    lines.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    lines.append(extra)
    return b"".join(lines)


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head size cap, a head deadline, a connection cap, JSON errors.

    ``_head_left`` is the state the hot path reads: the bytes the current request head may still take
    (an ``int``), ``None`` once the head is complete (a body, or the answer, follows), or ``-1`` after an
    error answer, when what arrives is dropped.
    """

    max_head_bytes: ClassVar[int] = 64 * 1024
    header_timeout: ClassVar[float] = 60.0
    max_connections: ClassVar[int] = _MAX_DEFAULT_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_left: int | None = self.max_head_bytes

    # -- connection ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            _warnings.warn(
                "connections",
                "connection answered 503: over the connection cap (SHIPYARD_MAX_CONNECTIONS)",
                {"status": 503, "max_connections": self.max_connections},
            )
            self._refuse(
                503,
                "Overloaded",
                f"this worker holds its maximum of {self.max_connections} connections "
                "(SHIPYARD_MAX_CONNECTIONS); retry",
                retry_after=True,
                linger=_OVER_CAP_LINGER_S,
            )
            return
        # The first head's deadline. uvicorn arms no timer before a first request: a connection that
        # never sent a byte stayed open forever.
        self.timeout_keep_alive_task = self.loop.call_later(self.header_timeout, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # uvicorn cancels its timer only on a clean close; a reset left it (and this protocol) alive until
        # it fired, up to the header timeout later.
        self._unset_keepalive_if_required()

    def data_received(self, data: bytes) -> None:
        left = self._head_left
        if left is not None:
            if len(data) > left:
                self._over_allowance(data, left)
                return
            self._head_left = left - len(data)
        # uvicorn cancels the keep-alive timer here, on any byte; on_headers_complete does, so a head
        # sent a byte at a time still has a deadline.
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._malformed(exc)
        except httptools.HttpParserUpgrade:
            self._upgrade_ignored()

    def _feed(self, data: bytes) -> bool:
        """:meth:`data_received`'s parsing, for the slow path; False when it ended in an error answer."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._malformed(exc)
            return False
        except httptools.HttpParserUpgrade:
            self._upgrade_ignored()
            return False
        return True

    def _upgrade_ignored(self) -> None:
        # No WebSockets (nor any other upgrade): the request was served as plain HTTP, as RFC 9110 allows,
        # and its connection closes after the answer (the parser reads nothing after an upgrade request).
        if self.cycle is not None:
            self.cycle.keep_alive = False

    def _over_allowance(self, data: bytes, left: int) -> None:
        """``data`` is more than the head may still take: feed what it may, and see whether the head ended."""
        while left >= 0:  # below 0: draining after an error answer
            self._head_left = 0
            if left and not self._feed(data[:left]):
                return
            if self._head_left == 0:  # the head did not end within the cap
                _warnings.warn(
                    "head",
                    "request answered 431: its head is over SHIPYARD_MAX_HEADER_BYTES",
                    {"status": 431, "max_header_bytes": self.max_head_bytes},
                )
                self._refuse(
                    431,
                    "RequestHeaderFieldsTooLarge",
                    f"the request line and headers are over {self.max_head_bytes} bytes (SHIPYARD_MAX_HEADER_BYTES)",
                )
                return
            # The head ended: the rest is its body, or the next request (whose head counts from here).
            data, left = data[left:], self._head_left
            if left is None or len(data) <= left:
                if left is not None:
                    self._head_left = left - len(data)
                self._feed(data)
                return

    def _malformed(self, exc: Exception) -> None:
        detail = str(exc) or type(exc).__name__
        _warnings.warn("malformed", "request answered 400: malformed HTTP", {"status": 400, "detail": detail})
        self._refuse(400, "BadRequest", f"malformed HTTP request: {detail}")

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "BadRequest", msg)

    def timeout_keep_alive_handler(self) -> None:
        """The head deadline (and uvicorn's keep-alive timeout): close; ``408`` when part of a head came."""
        if self.transport.is_closing():
            return
        left = self._head_left
        if left is not None and 0 <= left < self.max_head_bytes:
            self._refuse(
                408,
                "RequestTimeout",
                "the request head was not complete in time (SHIPYARD_HEADER_TIMEOUT, or the keep-alive time)",
            )
        else:
            self.transport.close()

    # -- parser callbacks ------------------------------------------------------------------------
    def _should_upgrade(self) -> bool:
        return False  # this protocol serves no WebSockets: an Upgrade header is ignored

    def on_headers_complete(self) -> None:
        # uvicorn's on_headers_complete (0.54), less its WebSocket and limit_concurrency branches (the
        # connection cap replaces the latter), plus the head's end: the byte count stops, the deadline is
        # cancelled, and the request cycle is a _Cycle (its fallback answers are JSON). Rewritten rather than
        # extended: a super() call and changing the cycle's class afterwards cost more than all the rest of
        # this protocol's per-request work (measured: about 1 µs a request for the class change alone).
        self._head_left = None
        timer = self.timeout_keep_alive_task
        if timer is not None:
            timer.cancel()
            self.timeout_keep_alive_task = None
        parser = self.parser
        scope = self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        existing_cycle = self.cycle
        self.cycle = _Cycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:  # pipelined: queued until the answer before it is sent
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._head_left = self.max_head_bytes  # the next request's head starts now
        cycle = self.cycle
        if cycle.response_complete:
            return
        cycle.more_body = False
        cycle.message_event.set()

    # -- answers written here ----------------------------------------------------------------------
    def _refuse(
        self, status: int, code: str, message: str, *, retry_after: bool = False, linger: float = LINGER_S
    ) -> None:
        """Answer ``status`` in JSON, then close after a lingering drain (see the module's docstring)."""
        self._head_left = -1
        self._unset_keepalive_if_required()
        transport = self.transport
        if transport.is_closing():
            return
        body = error_body(code, message)
        extra = b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
        if retry_after:
            extra += b"retry-after: 1\r\n"
        extra += b"connection: close\r\n\r\n"
        transport.write(_head(status, self.server_state.default_headers, extra) + body)
        _count_error(self.app, status, code)
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.resume_reading()
            self.timeout_keep_alive_task = self.loop.call_later(linger, transport.close)
        else:  # pragma: no cover - TCP transports can
            transport.close()


def _count_error(app: Any, status: int, code: str) -> None:
    metrics = getattr(app, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(str(status), code).inc()


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle, whose fallback answer is JSON.

    uvicorn sends :meth:`send_500_response` when the application raised before answering, or returned
    without answering, and when the graceful shutdown timed out and cancelled the request's task (the
    exception is then ``CancelledError``; the task is still marked as cancelling). That last one is not
    the request's fault nor the model's: ``503`` with ``Retry-After``, which clients and SageMaker retry.
    """

    async def send_500_response(self) -> None:
        task = asyncio.current_task()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        if task is not None and task.cancelling():
            status, code = 503, "ShuttingDown"
            body = error_body(
                code,
                "the server is shutting down and SHIPYARD_GRACEFUL_TIMEOUT ran out before this request was "
                "answered; retry",
            )
            headers.append((b"retry-after", b"1"))
        else:
            status, code = 500, "InternalError"
            body = error_body(code, "the server failed before answering (see its log)")
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
