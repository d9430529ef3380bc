"""How every client reaches an endpoint: one ``post`` that answers a :class:`Reply`, never raises for HTTP.

Single requests (:func:`shipyard.client.http.invoke`, ``Endpoint.invoke``), chunked runs and the benchmark all
go through a :class:`Transport`; :func:`checked` turns an error reply into :class:`InvokeError` for those that
want one answer or an exception.

:class:`HTTPTransport` speaks to any SageMaker-contract server (``shipyard serve``, the ``local`` target, a
container). Another transport (e.g. sagemaker-runtime's InvokeEndpoint) only has to map its answers to a
status code, a body and an optional Retry-After, and the chunking, retries and ordering stay the same.
"""

from __future__ import annotations

import email.utils
import http
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from shipyard.errors import InvokeError

if TYPE_CHECKING:
    from shipyard.client.streaming import ChunkStream

__all__ = [
    "HTTPTransport",
    "Reply",
    "SignHook",
    "Transport",
    "base_url",
    "checked",
    "endpoint_url",
    "exact_url",
    "retry_after_seconds",
    "send_one",
    "server_message",
]

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

    def json(self) -> Any:
        return orjson.loads(self.body)


SignHook = Callable[[str, str, Mapping[str, str], bytes], Mapping[str, str]]
"""``hook(method, url, headers, body) -> headers to add``, called once per request (e.g. a SigV4 signature, which
``cloud/signing.py`` makes: this floor knows nothing of AWS)."""


class Transport(Protocol):
    def post(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> Reply: ...

    def close(self) -> None: ...


class HTTPTransport:
    """``POST URL/invocations`` over one pooled httpx client (safe to share between threads).

    ``exact=True`` posts to ``url`` itself (a public API's URL, which has its own path); ``headers`` go with
    every request (e.g. ``x-api-key``) and ``sign`` adds the headers it answers for each one.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_connections: int = 64,
        exact: bool = False,
        sign: SignHook | None = None,
    ) -> None:
        self.where = url
        self.url = exact_url(url) if exact else endpoint_url(url, "/invocations")
        self._sign = sign
        self._client = httpx.Client(
            headers=headers or {},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def post(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> Reply:
        headers = {"content-type": content_type}
        if accept:
            headers["accept"] = accept
        if self._sign is not None:
            headers.update(self._sign("POST", str(self.url), headers, body))
        started = time.perf_counter()
        try:
            response = self._client.post(self.url, content=body, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException:
            return Reply(
                TIMED_OUT,
                f"no answer from {self.where} within {timeout_s:g} s".encode(),
                seconds=time.perf_counter() - started,
            )
        except httpx.HTTPError as exc:
            return Reply(
                UNREACHABLE, f"cannot reach {self.where}: {exc}".encode(), seconds=time.perf_counter() - started
            )
        return Reply(
            response.status_code,
            response.content,
            response.headers.get("content-type", ""),
            retry_after_seconds(response.headers.get("retry-after")),
            time.perf_counter() - started,
        )

    def stream(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> ChunkStream:
        """``POST`` answered as a stream: its chunks as they arrive (see :mod:`shipyard.client.streaming`)."""
        from shipyard.client.streaming import http_stream

        headers = {"content-type": content_type}
        if accept:
            headers["accept"] = accept
        if self._sign is not None:
            headers.update(self._sign("POST", str(self.url), headers, body))
        return http_stream(self._client, self.url, body, headers=headers, timeout_s=timeout_s, where=self.where)

    def close(self) -> None:
        self._client.close()


def checked(reply: Reply) -> Reply:
    """``reply`` when it is an answer (< 400); else :class:`InvokeError` with the server's message and status."""
    if reply.status < 400:
        return reply
    if reply.status in (TIMED_OUT, UNREACHABLE):
        raise InvokeError(reply.body.decode("utf-8", "replace"))
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = ""
    raise InvokeError(f"{reply.status} {phrase}: {server_message(reply.body)}", status=reply.status)


def send_one(transport: Transport, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> Reply:
    """One request through ``transport``, which is closed after: the answer, or :class:`InvokeError`."""
    try:
        return checked(transport.post(body, content_type=content_type, accept=accept, timeout_s=timeout_s))
    finally:
        transport.close()


def base_url(url: str) -> str:
    """``url`` without ``/invocations`` or ``/ping``, with ``http://`` when it names no scheme."""
    url = url.rstrip("/")
    for suffix in ("/invocations", "/ping"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url if "://" in url else f"http://{url}"


def endpoint_url(url: str, path: str) -> httpx.URL:
    # httpx.InvalidURL is not an httpx.HTTPError: check the URL once, here, with a message saying so.
    try:
        return httpx.URL(f"{base_url(url)}{path}")
    except httpx.InvalidURL as exc:
        raise InvokeError(f"{url!r} is not a valid URL ({exc}); expected e.g. http://127.0.0.1:8080") from None


def exact_url(url: str) -> httpx.URL:
    """``url`` as given (with ``http://`` when it names no scheme), checked once."""
    try:
        return httpx.URL(url if "://" in url else f"http://{url}")
    except httpx.InvalidURL as exc:
        raise InvokeError(f"{url!r} is not a valid URL ({exc})") from None


def server_message(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(document, dict) and "message" in document:
        return str(document["message"])
    return body[:500].decode("utf-8", "replace")


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
