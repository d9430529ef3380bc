"""Response streaming: an invocation answered chunk by chunk as the model yields, the way SageMaker's
``InvokeEndpointWithResponseStream`` reads a container (chunked transfer encoding, each chunk passed on as a
``PayloadPart``).

A handler streams when it says so (``handler.streams``: a toolkit script whose ``predict_fn`` or
``transform_fn`` is a generator function). Its requests skip the batcher's queue and go alone to the model
thread (:meth:`~shipyard.serving.batcher.Batcher.stream`), which hands each chunk to the event loop as the model
yields it, from the worker's thread or from the model process (:mod:`shipyard.serving.compute`). Here each chunk
is encoded (``handler.finish_chunk``: the script's ``output_fn`` per chunk, or the Accept type per chunk, JSON
Lines for JSON) and written as an ASGI body message with ``more_body=True``: no Content-Length, so the HTTP
server sends ``Transfer-Encoding: chunked`` and the client gets each chunk as it is written.

* **Headers wait for the first chunk.** An error before it (a bad request, a model that raises at once, no
  first chunk within the timeout) is the ordinary error answer with its status (400, 500, 504).
* **After the first chunk the status is sent**: an error then writes one last record on a line of its own,
  ``{"ModelStreamError": {"ErrorCode": ..., "Message": ...}}`` and a newline (the names of SageMaker's own
  mid-stream error event), is logged, counted as a 500 in the metrics, and **breaks the connection**: the
  chunked body never gets its terminating chunk, so no client can take the cut-short answer for a whole one
  (a plain reader, the async queue and batch transform see a broken answer; SageMaker reports a
  ``ModelStreamError``). The caller does the breaking (``Streamed.error`` set: raise
  :class:`~shipyard.errors.StreamAborted` out of the ASGI application, and uvicorn closes the connection).
* **The timeout (SAGEMAKER_MODEL_SERVER_TIMEOUT) is per chunk**: the gap before each chunk, the first
  included, not the whole stream (a stream is long on purpose). ``ErrorCode`` ``ModelInvocationTimeExceeded``.
* **A client that goes away** stops the stream: the generator is closed after the chunk it is computing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from shipyard.errors import InferenceTimeout, ModelError, ShipyardError
from shipyard.handler.base import Prepared

__all__ = ["STREAM_ERROR_KEY", "Streamed", "error_record", "stream_answer"]

log = logging.getLogger("shipyard.server")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STREAM_ERROR_KEY = "ModelStreamError"
_TIMED_OUT = "ModelInvocationTimeExceeded"


@dataclass(slots=True)
class Streamed:
    """How a streamed invocation went: ``status`` 200 once its head was sent (the stream may still have
    ended in an error record: ``error``), 499 for a client gone before that; ``failed`` the error before the
    first chunk, for the caller to answer the ordinary way."""

    status: int = 200
    chunks: int = 0
    bytes_out: int = 0
    error: str | None = None
    failed: Exception | None = None
    ends_line: bool = True  # the bytes written so far end with a newline (or none were written)


def error_record(code: str, message: str, *, new_line: bool = False) -> bytes:
    """The last line of a stream that failed after its first chunk (``new_line``: a newline first, so that it
    starts a line after a chunk that did not end one)."""
    record = orjson.dumps({STREAM_ERROR_KEY: {"ErrorCode": code, "Message": message}}) + b"\n"
    return b"\n" + record if new_line else record


async def stream_answer(
    batcher: Any,
    handler: Any,
    prepared: Prepared,
    receive: Receive,
    send: Send,
    *,
    timeout_s: float,
    extra_headers: list[tuple[bytes, bytes]],
) -> Streamed:
    """Run one streamed invocation and write its answer; see the module's docstring."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def emit(chunk: Any) -> None:  # in the model thread
        loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))

    done = batcher.stream(prepared.inputs, emit, stop)
    done.add_done_callback(lambda future: queue.put_nowait(("done", future)))
    watcher = loop.create_task(_watch_disconnect(receive, queue))
    result = Streamed()
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout_s)
            except TimeoutError:
                stop.set()
                message = f"no chunk within {timeout_s:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT, per chunk)"
                if not result.chunks:
                    result.failed = InferenceTimeout(message)
                    return result
                await _end_with_error(send, result, _TIMED_OUT, message)
                return result
            if kind == "gone":  # nothing more to write; the model stops after its current chunk
                result.status = 499
                return result
            if kind == "chunk":
                try:
                    body, media_type = handler.finish_chunk(value, prepared)
                    if not result.chunks and ("\n" in media_type or "\r" in media_type):
                        raise ModelError(f"the handler answered with an invalid Content-Type {media_type!r}")
                except Exception as exc:
                    stop.set()
                    if not result.chunks:
                        result.failed = exc
                        return result
                    await _end_with_error(send, result, *_code(exc))
                    return result
                if not result.chunks:
                    headers = [(b"content-type", media_type.encode("latin-1")), *extra_headers]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                result.chunks += 1
                result.bytes_out += len(body)
                if body:
                    result.ends_line = body.endswith(b"\n")
                await send({"type": "http.response.body", "body": body, "more_body": True})
                continue
            ok, error = value.result()  # "done": the model thread is through with this request
            if not ok:
                if not result.chunks:
                    result.failed = error
                    return result
                await _end_with_error(send, result, *_code(error))
                return result
            if not result.chunks:  # a generator that yielded nothing: an empty answer
                headers = [(b"content-type", b"application/jsonlines"), *extra_headers]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return result
    finally:
        stop.set()  # whatever ended it, the model has nobody to yield for any more
        watcher.cancel()


def _code(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, InferenceTimeout):
        return _TIMED_OUT, str(exc)
    if isinstance(exc, ShipyardError):
        return exc.code, str(exc)
    return "InternalError", f"{type(exc).__name__}: {exc}"


async def _end_with_error(send: Send, result: Streamed, code: str, message: str) -> None:
    log.error(
        "a streamed invocation failed after %d chunks: %s",
        result.chunks,
        message,
        extra={"fields": {"error_code": code, "chunks": result.chunks}},
    )
    record = error_record(code, message, new_line=not result.ends_line)
    result.error = code
    result.bytes_out += len(record)
    await send({"type": "http.response.body", "body": record, "more_body": True})
    # no last (empty) body message: the caller breaks the connection (see the module's docstring)


async def _watch_disconnect(receive: Receive, queue: asyncio.Queue[tuple[str, Any]]) -> None:
    """``("gone", None)`` on the queue when the client closes the connection (the body was read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            queue.put_nowait(("gone", None))
            return
        await asyncio.sleep(0)  # pragma: no cover - a body after the body: nothing to read
