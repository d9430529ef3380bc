"""The way callers reach the front: HTTP to its exact URL, with ``x-api-key`` when it has a key."""

from __future__ import annotations

import httpx

from shipyard.client.transport import HTTPTransport

__all__ = ["FrontTransport"]


class FrontTransport(HTTPTransport):
    """:class:`HTTPTransport` posting to ``url`` itself (not ``url/invocations``), with the key's header."""

    def __init__(self, url: str, *, key: str | None, max_connections: int = 4) -> None:
        super().__init__(url, headers={"x-api-key": key} if key else None, max_connections=max_connections)
        self.url = httpx.URL(url)
