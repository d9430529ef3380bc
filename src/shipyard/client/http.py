"""Invoke an endpoint over HTTP: the ``local`` target, ``shipyard serve``, or any SageMaker-contract server."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from shipyard.errors import ClientError

__all__ = ["Answer", "content_type_for", "invoke", "wait_ready"]

_BY_SUFFIX = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".npy": "application/x-npy",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".ndjson": "application/jsonlines",
}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    seconds: float

    def json(self) -> object:
        return orjson.loads(self.body)


def content_type_for(path: str | Path | None, default: str = "application/json") -> str:
    if path is None or str(path) == "-":
        return default
    return _BY_SUFFIX.get(Path(path).suffix.lower(), default)


def _base(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/invocations", "/ping"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url if "://" in url else f"http://{url}"


def invoke(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    accept: str | None = None,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST ``body`` to ``URL/invocations``; :class:`ClientError` with the server's message on an error."""
    request_headers = {"content-type": content_type, **(headers or {})}
    if accept:
        request_headers["accept"] = accept
    started = time.perf_counter()
    try:
        response = httpx.post(_endpoint(url, "/invocations"), content=body, headers=request_headers, timeout=timeout)
    except httpx.TimeoutException:
        raise ClientError(f"no answer from {url} within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach {url}: {exc}") from None
    seconds = time.perf_counter() - started
    if response.status_code >= 400:
        raise ClientError(
            f"{response.status_code} {response.reason_phrase}: {_message(response.content)}",
            status=response.status_code,
        )
    return Answer(response.status_code, response.headers.get("content-type", ""), response.content, seconds)


def wait_ready(url: str, timeout: float = 60.0, interval: float = 0.05) -> float:
    """Poll ``URL/ping`` until it answers 200; the seconds it took. :class:`ClientError` on time-out."""
    from shipyard.image.run import wait_for_ping  # the one /ping poller (a container's too)

    ping = wait_for_ping(_endpoint(url, "/ping"), timeout, interval=interval)
    if ping.seconds is None:
        raise ClientError(f"{url} was not ready within {timeout:g} s (last: {ping.last})")
    return ping.seconds


def _endpoint(url: str, path: str) -> httpx.URL:
    # httpx.InvalidURL is not an httpx.HTTPError: check the URL once, here, with a message saying so.
    try:
        return httpx.URL(f"{_base(url)}{path}")
    except httpx.InvalidURL as exc:
        raise ClientError(f"{url!r} is not a valid URL ({exc}); expected e.g. http://127.0.0.1:8080") from None


def _message(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(document, dict) and "message" in document:
        return str(document["message"])
    return body[:500].decode("utf-8", "replace")
