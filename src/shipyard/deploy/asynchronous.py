"""Asynchronous inference, the same on both targets: a request's input is put where the endpoint reads it, the
endpoint queues it (``InvokeEndpointAsync``, or the local queue process), and the answer appears later at its
output location (or the error at its failure location).

A target gives an :class:`AsyncChannel` (submit, fetch); the :class:`Journal` remembers each invocation under the
state file's directory so ``shipyard results NAME ID`` finds it later; :class:`AsyncHandle` is what
``Endpoint.predict_async`` returns: ``done()``, ``result(timeout)``, ``inference_id``, ``output_location``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from shipyard.deploy.options import ASYNC_MAX_PAYLOAD_MB, DeployOptions
from shipyard.errors import InvokeError

__all__ = [
    "DONE",
    "FAILED",
    "RUNNING",
    "SUFFIXES",
    "AsyncChannel",
    "AsyncHandle",
    "AsyncInvocation",
    "AsyncOutcome",
    "Journal",
    "async_environment",
    "check_inference_id",
    "new_inference_id",
    "suffix_for",
]

Status = Literal["done", "failed", "running"]
DONE: Literal["done"] = "done"
FAILED: Literal["failed"] = "failed"
RUNNING: Literal["running"] = "running"
# InvokeEndpointAsync's InferenceId: 1-64 characters of printable ASCII (botocore's model: \A\S[\p{Print}]*\z)
_INFERENCE_ID = re.compile(r"^\S[\x20-\x7e]{0,63}$")
_SUFFIXES = {"application/json": ".json", "application/jsonlines": ".jsonl", "text/csv": ".csv"}
SUFFIXES = (*_SUFFIXES.values(), ".bin")  # every suffix an input may have


def async_environment(options: DeployOptions) -> dict[str, str]:
    """The container's own limits raised to async's: the time a request may take and the payload it may be
    (what ``ServerConfig.from_env`` reads); a value the user set with ``--env`` wins."""
    settings = options.asynchronous
    if settings is None:
        return {}
    return {
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(settings.invocation_timeout_s),
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(ASYNC_MAX_PAYLOAD_MB),
    }


def new_inference_id() -> str:
    return str(uuid.uuid4())


def suffix_for(content_type: str) -> str:
    """The file suffix an input of ``content_type`` is stored under (``.bin`` for the others)."""
    return _SUFFIXES.get(content_type.split(";")[0].strip().lower(), ".bin")


def check_inference_id(inference_id: str) -> str:
    if not _INFERENCE_ID.match(inference_id) or "/" in inference_id:
        raise InvokeError(f"inference id {inference_id!r}: 1 to 64 printable characters, no spaces first, no '/'")
    return inference_id


@dataclass(frozen=True)
class AsyncInvocation:
    """One queued request: its id and where its input, answer and error are (``s3://`` or ``file://``)."""

    endpoint: str
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str | None
    submitted_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AsyncInvocation:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class AsyncOutcome:
    status: Status
    body: bytes = b""
    content_type: str = ""
    message: str = ""  # a failure's error (what the failure location holds)


class AsyncChannel(Protocol):
    """How a target queues requests and reads their outcome."""

    def submit(
        self, body: bytes, *, content_type: str, accept: str | None, inference_id: str, timeout_s: int | None
    ) -> AsyncInvocation: ...

    def fetch(self, invocation: AsyncInvocation) -> AsyncOutcome: ...


class Journal:
    """Each invocation of one deployment as ``DIR/ID.json`` (written atomically), so ``results`` finds it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, inference_id: str) -> Path:
        return self.directory / f"{check_inference_id(inference_id)}.json"

    def record(self, invocation: AsyncInvocation) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(invocation.inference_id)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(orjson.dumps(invocation.to_json()))
        part.replace(path)

    def find(self, inference_id: str) -> AsyncInvocation | None:
        path = self._path(inference_id)
        if not path.is_file():
            return None
        return AsyncInvocation.from_json(orjson.loads(path.read_bytes()))

    def remove(self) -> None:
        """Forget every invocation (the deployment is gone)."""
        if self.directory.is_dir():
            for path in self.directory.glob("*.json"):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def all(self) -> list[AsyncInvocation]:
        if not self.directory.is_dir():
            return []
        found = [AsyncInvocation.from_json(orjson.loads(p.read_bytes())) for p in self.directory.glob("*.json")]
        return sorted(found, key=lambda i: i.submitted_at)


Decode = Callable[[AsyncOutcome], Any]


class AsyncHandle:
    """A future-like handle on one queued request (what ``Endpoint.predict_async`` returns).

    >>> handle = shipyard.endpoint("digits").predict_async(X[:100])   # doctest: +SKIP
    >>> handle.done()                                                   # doctest: +SKIP
    False
    >>> handle.result(timeout=600)                                      # doctest: +SKIP
    [0, 1, 2, ...]
    """

    def __init__(
        self, channel: AsyncChannel, invocation: AsyncInvocation, *, decode: Decode | None = None, poll_s: float = 0.5
    ) -> None:
        self._channel = channel
        self.invocation = invocation
        self._decode = decode
        self._poll_s = poll_s
        self._final: AsyncOutcome | None = None

    @property
    def inference_id(self) -> str:
        return self.invocation.inference_id

    @property
    def output_location(self) -> str:
        return self.invocation.output_location

    @property
    def failure_location(self) -> str | None:
        return self.invocation.failure_location

    def poll(self) -> AsyncOutcome:
        """The outcome now (read once more until it is final)."""
        if self._final is not None:
            return self._final
        outcome = self._channel.fetch(self.invocation)
        if outcome.status != RUNNING:
            self._final = outcome
        return outcome

    def done(self) -> bool:
        return self.poll().status != RUNNING

    def wait(self, timeout: float | None = None, on_poll: Callable[[float], None] | None = None) -> AsyncOutcome:
        """Poll until the outcome is final, or ``timeout`` seconds (then the running outcome)."""
        started = time.monotonic()
        while True:
            outcome = self.poll()
            elapsed = time.monotonic() - started
            if on_poll is not None:
                on_poll(elapsed)
            if outcome.status != RUNNING or (timeout is not None and elapsed >= timeout):
                return outcome
            time.sleep(self._poll_s if timeout is None else max(0.0, min(self._poll_s, timeout - elapsed)))

    def result(self, timeout: float | None = None) -> Any:
        """The answer (decoded as ``predict`` decodes one); :class:`~shipyard.errors.InvokeError` with the failure's
        message when it failed, :class:`TimeoutError` when it is not there within ``timeout`` seconds."""
        outcome = self.wait(timeout)
        if outcome.status == RUNNING:
            raise TimeoutError(f"inference {self.inference_id} is still running after {timeout:g} s")
        if outcome.status == FAILED:
            raise InvokeError(f"inference {self.inference_id} failed: {outcome.message}")
        return self._decode(outcome) if self._decode is not None else outcome.body

    def __repr__(self) -> str:
        state = self._final.status if self._final is not None else "pending"
        return f"AsyncHandle({self.inference_id!r}, {state}, output={self.output_location!r})"
