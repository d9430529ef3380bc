"""The queue: an ASGI app that takes requests as SageMaker's runtime takes ``InvokeEndpointAsync`` and works
through them ``concurrency`` at a time against a container's ``/invocations``.

``POST /endpoints/NAME/async-invocations`` with the runtime's headers (``X-Amzn-SageMaker-InputLocation``, ``-Content-
Type``, ``-Accept``, ``-Inference-Id``, ``-InvocationTimeoutSeconds``) answers ``202 {"InferenceId": ...}`` with
``X-Amzn-SageMaker-OutputLocation`` and ``-FailureLocation``, as the runtime does; the request waits in an
``asyncio.Queue``. A worker reads the input (a ``file://`` location), posts it to the container with the
``X-Amzn-SageMaker-Inference-Id`` header and a read time-out of the request's InvocationTimeoutSeconds, and
writes the answer to ``OUTPUT/ID.out`` or the error to ``FAILURE/ID-error.out`` (each written whole, then
renamed into place, so a reader never sees half of one); with a success or error topic configured, a record in
SageMaker's notification format is appended to ``NOTIFY_DIR/success.jsonl`` or ``error.jsonl``.
``GET /ping``: the queue's counts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from shipyard.deploy.queue.store import join, read_location, write_location

__all__ = ["AsyncQueue", "Job", "QueueConfig"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEADER = "x-amzn-sagemaker-"


@dataclass(frozen=True)
class QueueConfig:
    endpoint: str
    upstream: str  # the container's URL
    output_prefix: str  # file:// or s3:// (store.py)
    failure_prefix: str
    concurrency: int = 4
    timeout_s: float = 3600.0  # the deployment's --invocation-timeout: the most a request may ask for
    notify_dir: Path | None = None  # records for the success/error topics, when configured
    notify_success: bool = False
    notify_error: bool = False


@dataclass
class Job:
    inference_id: str
    input_location: str
    content_type: str
    accept: str | None
    timeout_s: float
    received: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class AsyncQueue:
    """The ASGI app (uvicorn runs it with ``lifespan="on"``: the workers start with it)."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.counts = {"received": 0, "running": 0, "done": 0, "failed": 0}
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    # -- the ASGI edge ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/ping":
            await _answer(
                send, 200, {**self.counts, "queued": self.queue.qsize(), "concurrency": self.config.concurrency}
            )
            return
        if method == "POST" and path == f"/endpoints/{self.config.endpoint}/async-invocations":
            await _drain(receive)
            await self._accept(scope, send)
            return
        await _answer(send, 404, {"message": f"no such route {method} {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        """Start the workers (in the running event loop)."""
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=self.config.concurrency))
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.config.concurrency)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _accept(self, scope: Scope, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        location = headers.get(HEADER + "inputlocation", "")
        if not location.startswith(("file://", "s3://")):
            await _answer(send, 400, {"message": f"InputLocation {location!r}: a file:// or s3:// location"})
            return
        try:
            timeout_s = float(headers.get(HEADER + "invocationtimeoutseconds") or self.config.timeout_s)
        except ValueError:
            timeout_s = -1
        if not 1 <= timeout_s <= 3600:
            await _answer(send, 400, {"message": "InvocationTimeoutSeconds: 1 to 3600"})
            return
        inference_id = headers.get(HEADER + "inference-id") or str(uuid.uuid4())
        job = Job(
            inference_id=inference_id,
            input_location=location,
            content_type=headers.get(HEADER + "content-type", "application/octet-stream"),
            accept=headers.get(HEADER + "accept"),
            timeout_s=timeout_s,
            received=_now(),
        )
        self.counts["received"] += 1
        self.queue.put_nowait(job)
        extra = {
            HEADER + "outputlocation": self._output(inference_id),
            HEADER + "failurelocation": self._failure(inference_id),
        }
        await _answer(send, 202, {"InferenceId": inference_id}, extra)

    def _output(self, inference_id: str) -> str:
        return join(self.config.output_prefix, f"{inference_id}.out")

    def _failure(self, inference_id: str) -> str:
        return join(self.config.failure_prefix, f"{inference_id}-error.out")

    # -- the workers --------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            self.counts["running"] += 1
            try:
                await self.run(job)
            finally:
                self.counts["running"] -= 1
                self.queue.task_done()

    async def run(self, job: Job) -> None:
        """One request: the input to the container, its answer (or error) to the output (or failure) location."""
        assert self._client is not None
        try:
            found = await asyncio.to_thread(read_location, job.input_location)
        except Exception as exc:  # an S3 error, a file that cannot be read: the request fails, the queue goes on
            await self._failed(job, f"ValidationError: cannot read the input {job.input_location}: {exc}")
            return
        if found is None:
            await self._failed(job, f"ValidationError: there is no input at {job.input_location}")
            return
        body = found[0]
        headers = {"Content-Type": job.content_type, "X-Amzn-SageMaker-Inference-Id": job.inference_id}
        if job.accept:
            headers["Accept"] = job.accept
        timeout = httpx.Timeout(connect=10.0, read=job.timeout_s, write=job.timeout_s, pool=None)
        started = time.monotonic()
        try:
            answer = await self._client.post(
                f"{self.config.upstream}/invocations", content=body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException:
            await self._failed(job, f"ModelError: the model did not answer within {job.timeout_s:g} s")
            return
        except httpx.HTTPError as exc:
            await self._failed(job, f"ModelError: the container at {self.config.upstream} is unreachable: {exc}")
            return
        if answer.status_code >= 300:
            text = answer.content.decode(errors="replace").strip()
            await self._failed(
                job, f"ModelError: Received error ({answer.status_code}) from the model with message {text}"
            )
            return
        kind = answer.headers.get("content-type", "")
        await asyncio.to_thread(write_location, self._output(job.inference_id), answer.content, kind)
        self.counts["done"] += 1
        await self._notify(job, "Completed", self._output(job.inference_id), kind, time.monotonic() - started)

    async def _failed(self, job: Job, message: str) -> None:
        await asyncio.to_thread(write_location, self._failure(job.inference_id), message.encode() + b"\n", "text/plain")
        self.counts["failed"] += 1
        await self._notify(job, "Failed", self._failure(job.inference_id), "text/plain", None, message)

    async def _notify(
        self, job: Job, status: str, location: str, kind: str, seconds: float | None, reason: str | None = None
    ) -> None:
        """A record in SageMaker's async notification format, for a configured success or error topic."""
        config = self.config
        wanted = config.notify_success if status == "Completed" else config.notify_error
        if config.notify_dir is None or not wanted:
            return
        record: dict[str, Any] = {
            "awsRegion": "local",
            "eventTime": _now(),
            "receivedTime": job.received,
            "invocationStatus": status,
            "requestParameters": {
                "contentType": job.content_type,
                "endpointName": config.endpoint,
                "inputLocation": job.input_location,
            },
            "responseParameters": {"contentType": kind, "outputLocation": location},
            "inferenceId": job.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if reason is not None:
            record["failureReason"] = reason
        name = "success.jsonl" if status == "Completed" else "error.jsonl"
        line = orjson.dumps(record) + b"\n"
        await asyncio.to_thread(_append, config.notify_dir / name, line)


def _append(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(line)


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))


async def _answer(send: Send, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(document)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
