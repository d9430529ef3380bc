"""The ASGI application: SageMaker's routes over a handler and a batcher.

A plain ASGI callable rather than a framework: four routes do not need a router, and the request path
is the product (every microsecond here is a microsecond of every invocation). Errors become HTTP
answers in one place, :meth:`ServerApp._invocations`'s ``except`` clauses.

    GET  /ping                  200 once the model is loaded and a worker can take work, 503 otherwise
    POST /invocations           predictions
    GET  /execution-parameters  batch transform's hints
    GET  /metrics               Prometheus text
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from shipyard.config import ServerConfig
from shipyard.errors import (
    InferenceTimeout,
    ModelError,
    ModelNotReady,
    PayloadTooLarge,
    ShipyardError,
    StreamAborted,
)
from shipyard.handler import Handler, split, stack
from shipyard.serving.batcher import Batcher, BatchStats
from shipyard.serving.capture import Capture, ObjectStore, capture_for
from shipyard.serving.compute import Compute, Fault, InlineCompute, ModelProcess
from shipyard.serving.deadlines import Deadlines
from shipyard.serving.logs import AccessLog, output
from shipyard.serving.metrics import Metrics, render
from shipyard.serving.protocol import error_body as _error_body
from shipyard.serving.streaming import stream_answer

__all__ = ["ServerApp"]

log = logging.getLogger("shipyard.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = b"application/json"
# SageMaker's limits (InvokeEndpoint refuses more before the container sees the request; a direct client
# sending more is answered 400): CustomAttributes at most 1,024 US-ASCII characters, InferenceId 1 to 64.
MAX_CUSTOM_ATTRIBUTES = 1024
MAX_INFERENCE_ID = 64
_PLAIN_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


class _ClientGone(Exception):
    pass


class _PrometheusStats(BatchStats):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def batch(self, requests: int, rows: int, seconds: float) -> None:
        self.metrics.batch(requests, rows, seconds)  # written after the answers go out

    def queue(self, depth: int) -> None:
        self.metrics.queue(depth)


class ServerApp:
    def __init__(
        self,
        config: ServerConfig,
        handler: Handler,
        *,
        metrics: Metrics | None = None,
        on_load_failed: Callable[[BaseException], None] | None = None,
        warmed: Any = None,
        loaded: bool = False,
        slot: int = 0,
        available: Any = None,
        store: ObjectStore | None = None,
    ) -> None:
        self.config = config
        # A counter shared by every worker (a multiprocessing.Value): how many have loaded the model once.
        # /ping says 200 only when all have, so a container is never reported ready while a sibling worker
        # would still answer 503.
        self._warmed = warmed
        self.handler = handler
        self.metrics = metrics or Metrics()
        self.access_log = AccessLog(config.access_log)
        output().on_drop = self.metrics.log_lines_dropped.inc  # a stdout nobody reads: counted, never waited for
        self.capture: Capture | None = capture_for(
            config.capture_destination,
            config.capture_percent,
            max_queue=config.capture_queue,
            flush_seconds=config.capture_flush_s,
            store=store,  # where an s3:// capture goes (given by the entry point)
        )
        self.on_load_failed = on_load_failed
        self._preloaded = loaded  # the handler came loaded (the supervisor preloaded it before forking)
        self.ready = False
        self.load_error: BaseException | None = None
        # Whether each worker can take model calls now (a multiprocessing.Array of the supervisor's, one byte
        # per worker; None: this process alone): false while its model process is replaced or overran.
        self._slot = slot
        self._available = available
        self.available = False
        self.batcher = self._batcher(handler, slot)
        self._deadlines = Deadlines(
            config.timeout_s,
            lambda: InferenceTimeout(f"no answer within {config.timeout_s:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)"),
        )
        self._limit = config.max_payload_bytes
        self._execution_parameters = _execution_parameters(config, handler.batchable)

    def _batcher(self, handler: Handler, slot: int) -> Batcher:
        """The batcher of this worker's model calls: in a model process of its own, or in the worker."""
        config = self.config
        return Batcher(
            handler.predict,
            stack,
            split,
            max_rows=config.max_batch_size,
            max_requests=None if handler.batchable else 1,
            max_delay=config.max_batch_delay_ms / 1000.0,
            max_queue=config.max_queue,
            stats=_PrometheusStats(self.metrics),
            compute=self._compute(handler, slot),
        )

    def _compute(self, handler: Handler, slot: int) -> Compute:
        config = self.config
        if not config.model_process:
            return InlineCompute(
                handler.predict,
                stack,
                split,
                load=None if self._preloaded else handler.load,
                stream=getattr(handler, "predict_stream", None),
            )
        return ModelProcess(
            handler,
            stack,
            split,
            loaded=self._preloaded,
            name=f"worker {slot}",
            timeout_s=config.timeout_s,
            grace_s=config.overrun_grace_s,
            output=lambda data: output().write(data, wait_s=1.0),
            on_state=self._set_available,
            on_restart=lambda reason: self.metrics.model_restarts.labels(reason).inc(),
        )

    def _set_available(self, available: bool, why: str) -> None:
        """Called from the model thread whenever this worker starts or stops being able to take model calls."""
        self.available = available
        if self._available is not None:
            self._available.get_obj()[self._slot] = 1 if available else 0
        self.metrics.workers_available.set(1 if available else 0)

    def _any_available(self) -> bool:
        if self._available is None:
            return self.available
        return any(self._available.get_obj())

    # -- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/invocations":
                await self._invocations(scope, receive, send)
            elif path == "/ping":
                await self._ping(scope, send)
            elif path == "/execution-parameters":
                await self._simple(scope, send, 200, self._execution_parameters, _JSON)
            elif path == "/_shipyard/faults/oom" and self.config.fault_injection and self.config.model_process:
                await self._fault(scope, send, Fault("oom"))
            elif path == "/metrics":
                self.metrics.flush()  # this process's tally of the current loop turn
                await self._simple(scope, send, 200, render(), b"text/plain; version=0.0.4; charset=utf-8")
            else:
                await self._simple(scope, send, 404, _error_body("NotFound", f"no route {path}"), _JSON)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # the model thread loads the model (or forks its process) and reports here when done
                self.batcher.start(self._loaded)
                if self.capture is not None:
                    self.capture.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.access_log.flush()
                self.metrics.flush()
                await self.batcher.close()
                self._deadlines.close()
                if self.capture is not None:  # SIGTERM: write out what was captured
                    await asyncio.to_thread(self.capture.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _mark_ready(self) -> None:
        self.ready = True
        if self._warmed is not None:
            with self._warmed.get_lock():
                self._warmed.value += 1

    def _loaded(self, error: BaseException | None, seconds: float) -> None:
        if error is None:
            if not self.config.model_process:
                self._set_available(True, "ready")
            self._mark_ready()
            if not self._preloaded:
                log.info(
                    "model loaded",
                    extra={"fields": {"model": self.handler.description, "load_seconds": round(seconds, 3)}},
                )
        else:
            remote = _remote_traceback(error)
            log.error("loading the model failed: %s", error, exc_info=None if remote else error, extra=remote)
            self.load_error = error
            if self.on_load_failed is not None:
                self.on_load_failed(error)

    # -- routes ----------------------------------------------------------------------------------
    async def _ping(self, scope: Scope, send: Send) -> None:
        if self.ready and (self._warmed is None or self._warmed.value >= self.config.workers):
            if self._any_available():
                await self._simple(scope, send, 200, b"", _JSON, route="ping")
                return
            state = "unavailable"  # every worker's model is being replaced, or overran its time limit
        else:
            state = "failed" if self.load_error else "loading"
        await self._simple(scope, send, 503, orjson.dumps({"status": state}), _JSON, route="ping")

    async def _simple(
        self, scope: Scope, send: Send, status: int, body: bytes, content_type: bytes, route: str | None = None
    ) -> None:
        started = time.perf_counter()
        method = scope["method"]
        if route is None:
            route = scope["path"].strip("/") or "root"
        headers = [(b"content-type", content_type)]
        if method not in ("GET", "HEAD") and status != 404:
            status, body = 405, _error_body("MethodNotAllowed", f"{scope['path']} takes GET")
            headers = [(b"content-type", _JSON), (b"allow", b"GET, HEAD")]  # RFC 9110: a 405 says what is allowed
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        self.metrics.observe(route, status, time.perf_counter() - started)

    async def _fault(self, scope: Scope, send: Send, fault: Fault) -> None:
        """A model call that misbehaves on purpose, alone in its batch; answered as any invocation would be."""
        started = time.perf_counter()
        if scope["method"] != "POST":
            body, status = _error_body("MethodNotAllowed", f"{scope['path']} takes POST"), 405
        else:
            try:
                future = self.batcher.submit(fault, self.config.max_batch_size)  # a full batch: nobody shares it
                self._deadlines.watch(future)
                await future
                status, body = 200, b"{}"
            except ShipyardError as exc:
                status, body = exc.http_status, _error_body(exc.code, str(exc))
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe("faults", status, time.perf_counter() - started)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type = accept = inference_id = attributes = None
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"x-amzn-sagemaker-inference-id":
                inference_id = value
            elif name == b"x-amzn-sagemaker-custom-attributes":
                attributes = value
        if (inference_id is not None and len(inference_id) > MAX_INFERENCE_ID) or (
            attributes is not None and len(attributes) > MAX_CUSTOM_ATTRIBUTES
        ):
            await self._over_header_limit(send, started, inference_id, attributes)
            return
        headers: list[tuple[bytes, bytes]] = []
        size_in = 0
        try:
            if scope["method"] != "POST":
                status, body, content = _not_post(headers)
            else:
                if length > self._limit:
                    raise PayloadTooLarge(_too_large(length, self._limit))
                request = await _read_body(receive, self._limit)
                size_in = len(request)
                if not self.ready:
                    raise self._not_ready()
                prepared = self.handler.prepare(request, content_type, accept)
                if getattr(self.handler, "streams", False):
                    streamed = await self._stream(prepared, receive, send, started, inference_id, attributes, size_in)
                    if streamed is None:
                        return
                    raise streamed
                future = self.batcher.submit(prepared.inputs, prepared.rows)
                self._deadlines.watch(future)  # fails the future with InferenceTimeout (504) when late
                predictions = await future
                body, media_type = self.handler.finish(predictions, prepared)
                if "\n" in media_type or "\r" in media_type:  # a header that would end the answer's head early
                    raise ModelError(f"the handler answered with an invalid Content-Type {media_type!r}")
                status, content = 200, media_type.encode("latin-1")
        except StreamAborted:  # a stream that failed after its first chunk: uvicorn breaks the connection
            raise
        except _ClientGone:  # not a ShipyardError: caught here first as it was
            self.metrics.observe("invocations", 499, time.perf_counter() - started)
            return
        except Exception as exc:  # a ShipyardError's own answer, or a bug in a handler or a codec: 500
            status, body, content = self._failed(exc, headers)
        headers.append((b"content-type", content))
        headers.append((b"content-length", str(len(body)).encode()))
        if inference_id is not None:
            headers.append((b"x-amzn-sagemaker-inference-id", inference_id))
        if attributes is not None:
            headers.append((b"x-amzn-sagemaker-custom-attributes", attributes))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if status == 200 and self.capture is not None:  # sampled, queued, written off the request path
            self.capture.offer(inference_id, content_type, request, content, body)
        elapsed = time.perf_counter() - started
        self.metrics.observe("invocations", status, elapsed)
        if self.access_log.enabled:
            self._log_invocation(status, elapsed, size_in, len(body), inference_id, attributes)

    async def _stream(
        self,
        prepared: Any,
        receive: Receive,
        send: Send,
        started: float,
        inference_id: bytes | None,
        attributes: bytes | None,
        size_in: int,
    ) -> Exception | None:
        """A streamed answer (see :mod:`shipyard.serving.streaming`); the error to answer the ordinary way when
        it failed before its first chunk, else None (the answer is written, logged and counted)."""
        extra = []
        if inference_id is not None:
            extra.append((b"x-amzn-sagemaker-inference-id", inference_id))
        if attributes is not None:
            extra.append((b"x-amzn-sagemaker-custom-attributes", attributes))
        result = await stream_answer(
            self.batcher, self.handler, prepared, receive, send, timeout_s=self.config.timeout_s, extra_headers=extra
        )
        if result.failed is not None:
            return result.failed
        status = 500 if result.error and result.status == 200 else result.status
        if result.error:
            self.metrics.errors.labels("500", result.error).inc()
        elapsed = time.perf_counter() - started
        self.metrics.observe("invocations", status, elapsed)
        if self.access_log.enabled:
            self._log_invocation(status, elapsed, size_in, result.bytes_out, inference_id, attributes)
        if result.error and result.status == 200:  # the error record is written: no end to the body
            raise StreamAborted(f"the stream failed after {result.chunks} chunks ({result.error})")
        return None

    def _not_ready(self) -> ModelNotReady:
        return ModelNotReady(
            "the model is still loading" if self.load_error is None else f"the model failed to load: {self.load_error}"
        )

    def _failed(self, exc: Exception, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, bytes]:
        """Status, body and content type of the answer to an invocation that raised ``exc`` (a Retry-After
        added to ``headers`` for a 503): a ShipyardError's own status; 500 for anything else, a bug in a handler
        or a codec, and the server keeps serving."""
        if not isinstance(exc, ShipyardError):
            log.error("invocation failed: %s", exc, exc_info=exc)
            body = _error_body("InternalError", f"{type(exc).__name__}: {exc}")
            self.metrics.errors.labels("500", "InternalError").inc()
            return 500, body, _JSON
        status, body = exc.http_status, _error_body(exc.code, str(exc))
        if status >= 500:
            remote = _remote_traceback(exc)
            log.error("invocation failed: %s", exc, exc_info=None if remote else exc.__cause__ or exc, extra=remote)
        self.metrics.errors.labels(str(status), exc.code).inc()
        if status == 503:
            headers.append((b"retry-after", b"1"))
        return status, body, _JSON

    def _log_invocation(
        self,
        status: int,
        elapsed: float,
        size_in: int,
        size_out: int,
        inference_id: bytes | None,
        attributes: bytes | None,
    ) -> None:
        """The access log's line for one invocation. A SageMaker header is logged cut to SageMaker's limit
        (only the 400 for a header over it has a longer one)."""
        entry: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "path": "/invocations",
            "status": status,
            "ms": round(elapsed * 1000, 3),
            "bytes_in": size_in,
            "bytes_out": size_out,
        }
        if inference_id is not None:
            entry["inference_id"] = _text(inference_id, MAX_INFERENCE_ID)
        if attributes is not None:
            entry["custom_attributes"] = _text(attributes, MAX_CUSTOM_ATTRIBUTES)
        self.access_log.write(entry)

    async def _over_header_limit(
        self, send: Send, started: float, inference_id: bytes | None, attributes: bytes | None
    ) -> None:
        """400 for a SageMaker header over SageMaker's limit; the value is not echoed, and logged cut short."""
        over = []
        if inference_id is not None and len(inference_id) > MAX_INFERENCE_ID:
            over.append(("X-Amzn-SageMaker-Inference-Id", len(inference_id), MAX_INFERENCE_ID))
        if attributes is not None and len(attributes) > MAX_CUSTOM_ATTRIBUTES:
            over.append(("X-Amzn-SageMaker-Custom-Attributes", len(attributes), MAX_CUSTOM_ATTRIBUTES))
        message = "; ".join(f"{name} is {size} bytes, over SageMaker's limit of {limit}" for name, size, limit in over)
        body = _error_body("BadRequest", message)
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        if inference_id is not None and len(inference_id) <= MAX_INFERENCE_ID:
            headers.append((b"x-amzn-sagemaker-inference-id", inference_id))
        if attributes is not None and len(attributes) <= MAX_CUSTOM_ATTRIBUTES:
            headers.append((b"x-amzn-sagemaker-custom-attributes", attributes))
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        elapsed = time.perf_counter() - started
        self.metrics.errors.labels("400", "BadRequest").inc()
        self.metrics.observe("invocations", 400, elapsed)
        if self.access_log.enabled:
            self._log_invocation(400, elapsed, 0, len(body), inference_id, attributes)


def _not_post(headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, bytes]:
    """The 405 for an invocation that is not a POST (its Allow header added to ``headers``)."""
    headers.append((b"allow", b"POST"))
    return 405, _error_body("MethodNotAllowed", "/invocations takes POST"), _JSON


def _execution_parameters(config: ServerConfig, batchable: bool) -> bytes:
    """GET /execution-parameters' answer: what SageMaker batch transform asks the container for."""
    return orjson.dumps(
        {
            "MaxConcurrentTransforms": config.workers,
            "BatchStrategy": "MULTI_RECORD" if batchable else "SINGLE_RECORD",
            "MaxPayloadInMB": max(1, config.max_payload_bytes // (1024 * 1024)),
        }
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise PayloadTooLarge(_too_large(len(body), limit))
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit, at_least=True))
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    prefix = "over " if at_least else ""
    return (
        f"the body is {prefix}{size / 1048576:.2f} MB; the limit is {limit / 1048576:.2f} MB "
        "(SAGEMAKER_MAX_PAYLOAD_IN_MB). Split the input into several requests (shipyard invoke does)."
    )


def _remote_traceback(exc: BaseException) -> dict[str, Any] | None:
    """Log fields with the traceback of an error raised in the model process (tracebacks do not cross it)."""
    text = getattr(exc, "remote_traceback", None)
    return {"fields": {"traceback": text}} if text else None


def _text(value: bytes, limit: int | None = None) -> str:
    """A header value for the log: UTF-8 (other bytes as ``\\xNN``), cut to ``limit`` bytes with a mark."""
    if limit is not None and len(value) > limit:
        return value[:limit].decode("utf-8", "backslashreplace") + f"… ({len(value)} bytes)"
    return value.decode("utf-8", "backslashreplace")
