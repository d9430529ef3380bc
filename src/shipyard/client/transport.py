"""How the chunking client reaches an endpoint: one ``post`` that answers a :class:`Reply`, never raises for HTTP.

:class:`HTTPTransport` speaks to any SageMaker-contract server (``shipyard serve``, the ``local`` target, a
container). Another transport (e.g. sagemaker-runtime's InvokeEndpoint) only has to map its answers to a
status code, a body and an optional Retry-After, and the chunking, retries and ordering stay the same.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from shipyard.client.http import _base

__all__ = ["HTTPTransport", "Reply", "Transport", "retry_after_seconds"]

# Status codes the client produces itself for failures that never reached an HTTP answer.
TIMED_OUT = 598
UNREACHABLE = 599


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = ""
    retry_after: float | None = None  # seconds, from the Retry-After header
    seconds: float = 0.0


class Transport(Protocol):
    def post(self, body: bytes, *, content_type: str, accept: str | None, timeout: float) -> Reply: ...

    def close(self) -> None: ...


class HTTPTransport:
    """``POST URL/invocations`` over one pooled httpx client (safe to share between threads)."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, max_connections: int = 64) -> None:
        self.url = f"{_base(url)}/invocations"
        self._client = httpx.Client(
            headers=headers or {},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def post(self, body: bytes, *, content_type: str, accept: str | None, timeout: float) -> Reply:
        headers = {"content-type": content_type}
        if accept:
            headers["accept"] = accept
        started = time.perf_counter()
        try:
            response = self._client.post(self.url, content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return Reply(TIMED_OUT, f"no answer within {timeout:g} s".encode(), seconds=time.perf_counter() - started)
        except httpx.HTTPError as exc:
            return Reply(UNREACHABLE, f"cannot reach {self.url}: {exc}".encode(), seconds=time.perf_counter() - started)
        return Reply(
            response.status_code,
            response.content,
            response.headers.get("content-type", ""),
            retry_after_seconds(response.headers.get("retry-after")),
            time.perf_counter() - started,
        )

    def close(self) -> None:
        self._client.close()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
