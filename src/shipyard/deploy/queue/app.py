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

Each accepted request is also written to ``JOBS/ID.json`` until it has an outcome, so a queue that dies (or is
killed) loses nothing: on start, the jobs found there without an answer or error are queued again, oldest first.
On a graceful stop (SIGTERM) the running requests get ``grace_s`` to finish; those that do not get an error
("the queue stopped ..."); the ones still waiting stay in ``JOBS`` for the next start.
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

from shipyard.deploy.asynchronous import check_inference_id
from shipyard.deploy.queue.store import join, read_location, write_location
from shipyard.errors import InvokeError

__all__ = ["AsyncQueue", "Job", "QueueConfig"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEADER = "x-amzn-sagemaker-"
DEFAULT_TIMEOUT_S = 900.0  # InvokeEndpointAsync without InvocationTimeoutSeconds: "the request times out at 15 minutes"


@dataclass(frozen=True)
class QueueConfig:
    endpoint: str
    upstream: str  # the container's URL
    output_prefix: str  # file:// or s3:// (store.py)
    failure_prefix: str
    concurrency: int = 4
    timeout_s: float = 3600.0  # the deployment's --invocation-timeout (a request without the header: min(900, it))
    notify_dir: Path | None = None  # records for the success/error topics, when configured
    notify_success: bool = False
    notify_error: bool = False
    jobs_dir: Path | None = None  # the accepted requests without an outcome yet (re-queued on start)
    grace_s: float = 5.0  # on a graceful stop, how long the running requests may take to finish


@dataclass
class Job:
    inference_id: str
    input_location: str
    content_type: str
    accept: str | None
    timeout_s: float
    received: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class AsyncQueue:
    """The ASGI app (uvicorn runs it with ``lifespan="on"``: the workers start with it)."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.counts = {"received": 0, "running": 0, "done": 0, "failed": 0}
        self._workers: list[asyncio.Task[None]] = []
        self._busy: dict[asyncio.Task[None], Job] = {}
        self._closing = False
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
        """Queue again the jobs a previous run left without an outcome, then start the workers (in the running
        event loop)."""
        for job in self._left_over():
            self.counts["received"] += 1
            self.queue.put_nowait(job)
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=self.config.concurrency))
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.config.concurrency)]

    def _left_over(self) -> list[Job]:
        """The jobs under ``jobs_dir`` with neither answer nor error, oldest first (the others' files removed)."""
        directory = self.config.jobs_dir
        if directory is None or not directory.is_dir():
            return []
        jobs: list[Job] = []
        for path in directory.glob("*.json"):
            try:
                job = Job(**orjson.loads(path.read_bytes()))
            except (OSError, ValueError, TypeError):
                continue  # a file that is not a job: left alone
            if self._has_outcome(job.inference_id):
                path.unlink(missing_ok=True)
            else:
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.received)

    def _has_outcome(self, inference_id: str) -> bool:
        return any(read_location(x) is not None for x in (self._output(inference_id), self._failure(inference_id)))

    def _job_path(self, inference_id: str) -> Path | None:
        directory = self.config.jobs_dir
        return None if directory is None else directory / f"{inference_id}.json"

    def _forget(self, job: Job) -> None:
        path = self._job_path(job.inference_id)
        if path is not None:
            path.unlink(missing_ok=True)

    async def stop(self) -> None:
        """The idle workers stopped; the busy ones given ``grace_s`` to finish, then an error for their jobs."""
        self._closing = True
        busy = dict(self._busy)
        for task in self._workers:
            if task not in busy:
                task.cancel()
        if busy:
            _, late = await asyncio.wait(list(busy), timeout=self.config.grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for task in late:
                job = busy[task]
                if not await asyncio.to_thread(self._has_outcome, job.inference_id):
                    await self._failed(
                        job,
                        f"ModelError: the queue stopped before the model answered (it waited {self.config.grace_s:g} "
                        "s for the running requests)",
                    )
                self._forget(job)
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _accept(self, scope: Scope, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        location = headers.get(HEADER + "inputlocation", "")
        if not location.startswith(("file://", "s3://")):
            await _answer(send, 400, {"message": f"InputLocation {location!r}: a file:// or s3:// location"})
            return
        given = headers.get(HEADER + "invocationtimeoutseconds")
        try:
            timeout_s = float(given) if given else min(DEFAULT_TIMEOUT_S, self.config.timeout_s)
        except ValueError:
            timeout_s = -1
        if not 1 <= timeout_s <= 3600:
            await _answer(send, 400, {"message": "InvocationTimeoutSeconds: 1 to 3600"})
            return
        inference_id = headers.get(HEADER + "inference-id") or str(uuid.uuid4())
        try:
            check_inference_id(inference_id)
        except InvokeError as exc:
            await _answer(send, 400, {"message": f"InferenceId: {exc}"})
            return
        if await self._is_known(inference_id):
            await _answer(
                send,
                400,
                {
                    "message": f"InferenceId {inference_id!r} is taken: a request with it is queued, running or has "
                    "its answer or error already; give each request its own id"
                },
            )
            return
        job = Job(
            inference_id=inference_id,
            input_location=location,
            content_type=headers.get(HEADER + "content-type", "application/octet-stream"),
            accept=headers.get(HEADER + "accept"),
            timeout_s=timeout_s,
            received=_now(),
        )
        path = self._job_path(inference_id)
        if path is not None:
            await asyncio.to_thread(_write_whole, path, job.to_json())
        self.counts["received"] += 1
        self.queue.put_nowait(job)
        extra = {
            HEADER + "outputlocation": self._output(inference_id),
            HEADER + "failurelocation": self._failure(inference_id),
        }
        await _answer(send, 202, {"InferenceId": inference_id}, extra)

    async def _is_known(self, inference_id: str) -> bool:
        """Whether a request with this id is queued, running or has its outcome already."""
        path = self._job_path(inference_id)
        if (path is not None and path.exists()) or any(j.inference_id == inference_id for j in self._busy.values()):
            return True
        return await asyncio.to_thread(self._has_outcome, inference_id)

    def _output(self, inference_id: str) -> str:
        return join(self.config.output_prefix, f"{inference_id}.out")

    def _failure(self, inference_id: str) -> str:
        return join(self.config.failure_prefix, f"{inference_id}-error.out")

    # -- the workers --------------------------------------------------------------------------------------
    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._closing:
            job = await self.queue.get()
            self._busy[task] = job
            self.counts["running"] += 1
            try:
                await self.run(job)
                self._forget(job)
            finally:
                del self._busy[task]
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


def _write_whole(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_bytes(body)
    part.replace(path)


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
