"""The floor: the smallest ASGI app on Shipyard's HTTP stack (uvicorn + httptools + uvloop).

It reads the request body and answers a constant, so what it measures is the HTTP stack alone: the
fastest any Python model server on this stack can answer, whatever its model.

    uvicorn --app-dir bench/serve_apps floor:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

_BODY = b'{"predictions":[0]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body, as any real server must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
