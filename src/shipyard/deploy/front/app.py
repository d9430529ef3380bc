"""The front: an ASGI app that answers the way an API Gateway REST API answers, in front of a local container.

Only ``POST PATH`` is routed (anything else: ``403 Missing Authentication Token``, as API Gateway answers an
unknown resource or method); with a key, ``x-api-key`` is compared in constant time (``403 Forbidden``); a token
bucket (rate, burst) throttles (``429 Too Many Requests``, with ``Retry-After``); a quota counts requests per
DAY/WEEK/MONTH in UTC (``429 Limit Exceeded``); a body over 10 MB is refused (``413 Request Too Long``) before
anything is forwarded. The request goes to the container's ``/invocations`` with its body, Content-Type and
Accept untouched, and the container's answer comes back as it is (status, body, Content-Type); no answer within
29 s: ``504 Endpoint request timed out``; no container: ``502 Internal server error``.

Every answer carries ``x-amzn-RequestId``; the front's own errors carry ``x-amzn-ErrorType`` as API Gateway's do,
with the body ``{"message": ...}``. The messages and statuses are API Gateway's documented defaults (gateway
response types; the 403 and 429 troubleshooting articles); of the ErrorType values only
``MissingAuthenticationTokenException`` and ``ForbiddenException`` are documented there, the others follow the same
naming. ``Retry-After`` is this front's addition (API Gateway sends none), so a client can wait the right time.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from shipyard.deploy.expose import API_PAYLOAD_LIMIT, API_TIMEOUT_S, Quota

__all__ = ["Front", "FrontConfig", "QuotaCounter", "TokenBucket"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# (status, message, x-amzn-ErrorType): API Gateway's default gateway responses
MISSING_TOKEN = (403, "Missing Authentication Token", "MissingAuthenticationTokenException")
FORBIDDEN = (403, "Forbidden", "ForbiddenException")
THROTTLED = (429, "Too Many Requests", "TooManyRequestsException")
QUOTA_EXCEEDED = (429, "Limit Exceeded", "LimitExceededException")
TOO_LARGE = (413, "Request Too Long", "RequestTooLongException")
TIMED_OUT = (504, "Endpoint request timed out", "InternalServerErrorException")
UNREACHABLE = (502, "Internal server error", "InternalServerErrorException")
GatewayError = tuple[int, str, str]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; a request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one is free."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def _period_key(period: str, now: datetime) -> tuple[int, ...]:
    if period == "DAY":
        return (now.year, now.month, now.day)
    if period == "WEEK":
        year, week, _ = now.isocalendar()
        return (year, week)
    return (now.year, now.month)


class QuotaCounter:
    """Requests counted per calendar DAY, WEEK or MONTH (UTC), as a usage plan's quota counts them."""

    def __init__(self, quota: Quota, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.quota, self._clock = quota, clock
        self._key: tuple[int, ...] | None = None
        self.used = 0

    def take(self) -> bool:
        key = _period_key(self.quota.period, self._clock())
        if key != self._key:
            self._key, self.used = key, 0
        if self.used >= self.quota.limit:
            return False
        self.used += 1
        return True


@dataclass(frozen=True)
class FrontConfig:
    upstream: str  # the container's base URL: http://127.0.0.1:PORT
    path: str = "/predict"
    rate: float = 50.0
    burst: int = 100
    quota: Quota | None = None
    key: str | None = None  # set: --auth api-key
    timeout_s: float = API_TIMEOUT_S
    payload_limit: int = API_PAYLOAD_LIMIT

    @property
    def invocations(self) -> str:
        return self.upstream.rstrip("/") + "/invocations"


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    """The caller went away before its body was all there: nothing is forwarded, nothing is answered."""


class Front:
    """The ASGI app (uvicorn serves it: ``python -m shipyard.deploy.front``)."""

    def __init__(self, config: FrontConfig, *, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.bucket = TokenBucket(config.rate, config.burst)
        self.quota = QuotaCounter(config.quota) if config.quota else None
        self._client: httpx.AsyncClient | None = None
        self._log = log or _stderr_line
        self.forwarded = 0  # requests sent to the container

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # one pooled client, made on the server's event loop
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.config.timeout_s, connect=5.0))
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        status = await self._handle(scope, receive, send, request_id)
        self._log(
            orjson.dumps(
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            ).decode()
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _refused(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[GatewayError, float] | None:
        """Why the request is turned away before its body is read (and the Retry-After seconds), else None."""
        config = self.config
        if scope["method"] != "POST" or scope["path"].rstrip("/") != config.path:
            return MISSING_TOKEN, 0.0
        if config.key is not None and not hmac.compare_digest(headers.get(b"x-api-key", b""), config.key.encode()):
            return FORBIDDEN, 0.0
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > config.payload_limit:
            return TOO_LARGE, 0.0
        wait = self.bucket.take()
        if wait:
            return THROTTLED, wait
        if self.quota is not None and not self.quota.take():
            return QUOTA_EXCEEDED, 0.0
        return None

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        headers = {name.lower(): value for name, value in scope["headers"]}
        refused = self._refused(scope, headers)
        if refused is not None:
            error, wait = refused
            return await _send_error(send, error, request_id, retry_after=wait)
        try:
            body = await _read_body(receive, self.config.payload_limit)
        except _TooLarge:
            return await _send_error(send, TOO_LARGE, request_id)
        except _Gone:
            return 499  # logged as the caller's own disconnect (no answer is sent)
        forward = {
            name.decode(): headers[name].decode("latin-1") for name in (b"content-type", b"accept") if name in headers
        }
        self.forwarded += 1
        try:
            response = await asyncio.wait_for(
                self.client.post(self.config.invocations, content=body, headers=forward), self.config.timeout_s
            )
        except (TimeoutError, httpx.TimeoutException):
            return await _send_error(send, TIMED_OUT, request_id)
        except httpx.HTTPError:
            return await _send_error(send, UNREACHABLE, request_id)
        out = [(b"x-amzn-requestid", request_id.encode()), (b"content-length", str(len(response.content)).encode())]
        if "content-type" in response.headers:
            out.append((b"content-type", response.headers["content-type"].encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})
        return response.status_code


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request's body, streamed; :class:`_TooLarge` as soon as it passes ``limit`` bytes, :class:`_Gone` when
    the caller disconnects first (a part of a body is never forwarded)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_error(send: Send, error: GatewayError, request_id: str, *, retry_after: float = 0.0) -> int:
    status, message, error_type = error
    body = orjson.dumps({"message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-errortype", error_type.encode()),
    ]
    if retry_after > 0:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
