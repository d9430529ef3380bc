"""Invoke an endpoint over HTTP: the ``local`` target, ``shipyard serve``, or any SageMaker-contract server."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from shipyard.client.transport import HTTPTransport, Reply, endpoint_url, send_one
from shipyard.errors import InvokeError

__all__ = ["content_type_for", "invoke", "wait_ready"]

_BY_SUFFIX = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".npy": "application/x-npy",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".ndjson": "application/jsonlines",
}


def content_type_for(path: str | Path | None, default: str = "application/json") -> str:
    if path is None or str(path) == "-":
        return default
    return _BY_SUFFIX.get(Path(path).suffix.lower(), default)


def invoke(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    accept: str | None = None,
    timeout_s: float = 60.0,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST ``body`` to ``URL/invocations``; :class:`InvokeError` with the server's message on an error."""
    transport = HTTPTransport(url, headers=headers, max_connections=1)
    return send_one(transport, body, content_type=content_type, accept=accept, timeout_s=timeout_s)


def wait_ready(url: str, timeout: float = 60.0, interval: float = 0.05) -> float:
    """Poll ``URL/ping`` until it answers 200; the seconds it took. :class:`InvokeError` on time-out."""
    started = time.perf_counter()
    deadline = started + timeout
    last = "no answer"
    ping = endpoint_url(url, "/ping")
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            try:
                response = client.get(ping)
                if response.status_code == 200:
                    return time.perf_counter() - started
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(interval)
    raise InvokeError(f"{url} was not ready within {timeout:g} s (last: {last})")
