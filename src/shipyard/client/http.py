"""Invoke an endpoint over HTTP: the ``local`` target, ``shipyard serve``, or any SageMaker-contract server."""

from __future__ import annotations

from shipyard.client.transport import HTTPTransport, Reply, endpoint_url, send_one
from shipyard.codecs.media import content_type_for
from shipyard.errors import InvokeError

__all__ = ["content_type_for", "invoke", "wait_ready"]


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
    from shipyard.image.run import wait_for_ping  # the one /ping poller (a container's too)

    ping = wait_for_ping(endpoint_url(url, "/ping"), timeout, interval=interval)
    if ping.seconds is None:
        raise InvokeError(f"{url} was not ready within {timeout:g} s (last: {ping.last})")
    return ping.seconds
