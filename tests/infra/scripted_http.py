"""A small real HTTP server whose answers a test scripts: 503s, a 413, a payload limit, slow chunks.

It is a raw ASGI app served by uvicorn on 127.0.0.1 in a thread, so the client under test talks real HTTP.
Its "model" doubles numbers and upper-cases texts, so every answer can be checked against its input.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn


def answer(item: Any) -> Any:
    return item.upper() if isinstance(item, str) else item * 2


@dataclass
class Script:
    """What the server does with request number N (1-based), counted over every POST it receives."""

    fail: dict[int, int] = field(default_factory=dict)  # request number -> error status to answer
    fail_all: int | None = None  # answer every request with this status
    retry_after: str = "0"
    max_body: int | None = None  # a real payload limit: larger bodies get 413
    seconds_per_row: float = 0.0


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []  # status, rows, first row, time
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        with self._lock:
            number = len(self.requests) + 1
            record: dict[str, Any] = {"n": number, "bytes": len(body), "at": time.monotonic()}
            self.requests.append(record)
        script = self.script
        headers = [(b"content-type", b"application/json")]
        status = script.fail_all or script.fail.get(number)
        if status is None and script.max_body is not None and len(body) > script.max_body:
            status = 413
        if status is not None:
            record["status"] = status
            if status in (429, 503):
                headers.append((b"retry-after", script.retry_after.encode()))
            message = orjson.dumps({"error": "Scripted", "message": f"scripted {status} for request {number}"})
            return await _send(send, status, message, headers)
        document = orjson.loads(body)
        rows = document["instances"] if isinstance(document, dict) else document
        record.update(status=200, rows=len(rows), first=rows[0] if rows else None)
        if script.seconds_per_row:
            await asyncio.sleep(script.seconds_per_row * len(rows))
        await _send(send, 200, orjson.dumps({"predictions": [answer(row) for row in rows]}), headers)

    def ok_rows(self) -> int:
        return sum(r.get("rows", 0) for r in self.requests if r.get("status") == 200)

    def statuses(self) -> list[int]:
        return [r["status"] for r in self.requests]


async def read_body(receive: Callable[..., Any]) -> bytes:
    """An ASGI request's whole body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _send(send: Callable[..., Any], status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Running:
    app: ScriptedServer
    url: str


def start_scripted(script: Script) -> tuple[Running, Callable[[], None]]:
    """Serve one scripted app on a free port; returns it and a function that stops it."""
    app = ScriptedServer(script)
    url, stop = serve_asgi(app)
    return Running(app, url), stop


def serve_asgi(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve an ASGI app with uvicorn on a free port of 127.0.0.1 in a thread: its URL and how to stop it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", limit_concurrency=1000)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("the scripted server did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop
