"""Invoke an endpoint over HTTP: the ``local`` target, ``shipyard serve``, or any SageMaker-contract server."""

from __future__ import annotations

from shipyard.client.transport import HTTPTransport, Reply, send_one
from shipyard.codecs.media import content_type_for

__all__ = ["content_type_for", "invoke"]


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
