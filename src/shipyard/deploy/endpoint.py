"""The handle the Python API returns: ``endpoint.predict(rows)``, ``endpoint.logs()``, ``endpoint.delete()``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.client.chunked import Limits, invoke_all, limits_for
from shipyard.client.streaming import ChunkStream
from shipyard.client.transport import HTTPTransport, Reply, Transport, send_one
from shipyard.deploy.asynchronous import AsyncHandle, AsyncOutcome
from shipyard.deploy.base import CleanupReport
from shipyard.deploy.expose import not_exposed
from shipyard.deploy.multimodel import TARGET_MODEL_HEADER
from shipyard.deploy.state import Deployment
from shipyard.errors import InvokeError, UsageError

if TYPE_CHECKING:
    from shipyard.deploy.api import Deployer

__all__ = ["VIAS", "Destination", "Endpoint", "decode_outcome", "destination", "is_url"]

VIAS = ("endpoint", "api")  # how a deployment is reached: directly, or through its public API (`expose`)


class Endpoint:
    """A deployed endpoint (``local`` or ``sagemaker``), as recorded in the state file.

    >>> endpoint = shipyard.deploy("bundle/", name="digits")          # doctest: +SKIP
    >>> endpoint.predict(X[:2])                                         # doctest: +SKIP
    [3, 7]
    >>> endpoint.delete()                                               # doctest: +SKIP
    """

    def __init__(self, deployer: Deployer, record: Deployment) -> None:
        self._deployer = deployer
        self.record = record

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def target(self) -> str:
        return self.record.target

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def url(self) -> str | None:
        """The HTTP address of a ``local`` endpoint (``None`` for SageMaker: use :meth:`predict`)."""
        return self.record.url

    def refresh(self) -> Endpoint:
        """Read the status from the target again."""
        self.record = self._deployer.refresh(self.name)
        return self

    def invoke(
        self,
        body: bytes,
        *,
        content_type: str = "application/json",
        accept: str | None = None,
        timeout_s: float = 60.0,
        target_model: str | None = None,
    ) -> Reply:
        """Send ``body`` as it is; the raw answer. ``target_model``: a multi-model endpoint's model (``a.tar.gz``)."""
        return self._deployer.invoke(
            self.name, body, content_type=content_type, accept=accept, timeout_s=timeout_s, target_model=target_model
        )

    @property
    def limits(self) -> Limits:
        """The payload and time limits of this endpoint (serverless: 4 MB, else 6 MB and 60 s)."""
        return limits_for(serverless=bool(self.record.serverless))

    def predict(
        self, data: Any, *, accept: str = "application/json", timeout_s: float = 60.0, target_model: str | None = None
    ) -> Any:
        """Predictions for ``data``: rows (a list, a numpy array, a DataFrame) are sent as JSON ``instances``;
        bytes or a str are sent as they are. A JSON answer's ``predictions`` are returned, else its body.
        ``target_model``: a multi-model endpoint's model."""
        body, content_type = _encode(data)
        answer = self.invoke(
            body, content_type=content_type, accept=accept, timeout_s=timeout_s, target_model=target_model
        )
        if answer.content_type.startswith("application/json"):
            document = answer.json()
            if isinstance(document, dict) and "predictions" in document:
                return document["predictions"]
            return document
        return answer.body

    def predict_stream(self, data: Any, *, accept: str = "application/json", timeout_s: float = 60.0) -> Iterator[Any]:
        """The answer of a streaming model (a handler whose ``predict_fn`` yields) as it arrives: each JSON Lines
        record decoded, or the raw chunks (bytes) of any other type. ``data`` is encoded as for :meth:`predict`.
        An error after the first chunk raises :class:`~shipyard.errors.InvokeError` where it happened."""
        body, content_type = _encode(data)
        where = Destination(self.url or "", self.name, self._deployer, bool(self.record.serverless))
        chunks = where.stream(body, content_type=content_type, accept=accept, timeout_s=timeout_s)
        if "json" not in (chunks.content_type or accept):
            yield from chunks
            return
        pending = b""
        for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield orjson.loads(line)
        if pending.strip():
            yield orjson.loads(pending)

    def predict_all(
        self,
        rows: Sequence[Any],
        *,
        limits: Limits | None = None,
        concurrency: int = 4,
        on_results: Callable[[int, list[Any]], None] | None = None,
        **options: Any,
    ) -> list[Any]:
        """Predictions for any number of rows, in order: split into requests that fit the endpoint's limits
        (serverless: 4 MB, else 6 MB and 60 s), sent ``concurrency`` at a time with retries (see
        ``shipyard.client.chunked``); ``options`` go to its ``ChunkedInvoker`` (``max_items``, ...)."""
        rows = _plain(rows)
        limits = limits or self.limits
        transport = self._deployer.transport(
            self.name, read_timeout_s=limits.read_timeout_s, connections=max(4, concurrency)
        )
        try:
            return invoke_all(transport, rows, limits=limits, concurrency=concurrency, on_results=on_results, **options)
        finally:
            transport.close()

    def predict_async(
        self,
        data: Any,
        *,
        accept: str = "application/json",
        inference_id: str | None = None,
        timeout_s: int | None = None,
    ) -> AsyncHandle:
        """Queue ``data`` (encoded as :meth:`predict` encodes it) on an asynchronous endpoint (``deploy --async``);
        a future-like handle: ``done()``, ``result(timeout)`` (the predictions, decoded as :meth:`predict` does),
        ``inference_id``, ``output_location``. Up to 1 GB and ``timeout_s`` (at most 3600) seconds a request."""
        body, content_type = _encode(data)
        return self._deployer.invoke_async(
            self.name,
            body,
            content_type=content_type,
            accept=accept,
            inference_id=inference_id,
            timeout_s=timeout_s,
            decode=decode_outcome,
        )

    def logs(self, lines: int = 50) -> list[str]:
        """The container's last log lines."""
        return list(self._deployer.logs(self.name, lines=lines, follow=False))

    def delete(self, *, keep_artifacts: bool = False) -> CleanupReport:
        """Delete the endpoint and everything it created (see ``shipyard cleanup``)."""
        return self._deployer.cleanup(self.name, keep_artifacts=keep_artifacts)

    def __repr__(self) -> str:
        where = self.url or self.record.region or ""
        return f"Endpoint({self.name!r}, target={self.target!r}, status={self.status!r}, {where})"


def decode_outcome(outcome: AsyncOutcome) -> Any:
    """An asynchronous answer as :meth:`Endpoint.predict` returns one: a JSON answer's ``predictions`` (or the
    document), else the body."""
    if outcome.content_type.startswith("application/json") or outcome.body[:1] in (b"{", b"["):
        try:
            document = orjson.loads(outcome.body)
        except orjson.JSONDecodeError:
            return outcome.body
        if isinstance(document, dict) and "predictions" in document:
            return document["predictions"]
        return document
    return outcome.body


def is_url(target: str) -> bool:
    """``shipyard invoke`` and ``bench`` take a URL or a deployment's name: a URL has a scheme, a port or a path."""
    return "://" in target or ":" in target or "/" in target


@dataclass(frozen=True)
class Destination:
    """Where requests go: a URL, or a recorded deployment (whose target says how: HTTP, or InvokeEndpoint).

    ``via="api"``: a deployment's public API (``shipyard expose``) instead, as its callers reach it: its URL,
    with its key or a SigV4 signature, within API Gateway's limits too (29 s an answer).
    """

    url: str  # the URL, the local deployment's address, "" for a sagemaker endpoint, or the public API's URL
    name: str | None = None  # the deployment's name, when it is one
    deployer: Deployer | None = None
    serverless: bool = False
    via: str = "endpoint"
    target_model: str | None = None  # a multi-model endpoint's model (TargetModel / X-Amzn-SageMaker-Target-Model)

    def transport(self, *, read_timeout_s: float, connections: int) -> Transport:
        """The one way to the endpoint, for single requests, chunked runs and the benchmark (close it after)."""
        if self.deployer is not None and self.name is not None:
            return self.deployer.transport(
                self.name,
                read_timeout_s=read_timeout_s,
                connections=connections,
                via=self.via,
                target_model=self.target_model,
            )
        headers = {TARGET_MODEL_HEADER: self.target_model} if self.target_model else None
        return HTTPTransport(self.url, max_connections=connections, headers=headers)

    def stream(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> ChunkStream:
        """One request answered as a stream: the chunks as they arrive, as a :class:`~shipyard.client.streaming.
        ChunkStream` (timed) whose iteration closes the transport at its end. Not with a ``target_model``:
        InvokeEndpointWithResponseStream has no TargetModel, so neither target streams from one."""
        if self.target_model:
            raise UsageError(
                f"{self.name or self.url}: a multi-model endpoint's model ({self.target_model}) cannot be streamed: "
                "InvokeEndpointWithResponseStream has no TargetModel"
            )
        transport = self.transport(read_timeout_s=timeout_s, connections=1)
        stream = getattr(transport, "stream", None)
        if stream is None:
            transport.close()
            raise InvokeError(f"{self.name or self.url} cannot be read as a stream through {type(transport).__name__}")
        try:
            chunks = stream(body, content_type=content_type, accept=accept, timeout_s=timeout_s)
        except BaseException:
            transport.close()
            raise
        return _closing(chunks, transport)

    def invoke(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> Reply:
        transport = self.transport(read_timeout_s=timeout_s, connections=1)
        try:
            return send_one(transport, body, content_type=content_type, accept=accept, timeout_s=timeout_s)
        finally:
            transport.close()


def destination(target: str, deployer: Callable[[], Deployer], *, via: str = "endpoint") -> Destination:
    """A URL as it is; a recorded deployment's name through ``deployer()`` (made only for a name). A name with
    no record comes back as a URL (the request then says it cannot reach it). ``via="api"``: the deployment's
    public API, which it must have (:class:`~shipyard.errors.InvokeError` otherwise, and for a URL)."""
    if via not in VIAS:
        raise InvokeError(f"--via {via!r}: endpoint or api")
    if is_url(target):
        if via == "api":
            raise InvokeError(f"--via api goes through a deployment's public API: give its name, not {target}")
        return Destination(target)
    found = deployer()
    record = found.state.get(target)
    if record is None:
        if via == "api":
            raise InvokeError(f"no deployment named {target!r} in {found.state.path} (see shipyard status)")
        return Destination(target)
    if via == "api":
        if record.exposure is None:
            raise InvokeError(not_exposed(target))
        return Destination(record.exposure.url, target, found, bool(record.serverless), via)
    return Destination(record.url or "", target, found, bool(record.serverless))


class _closing(ChunkStream):
    """A transport's ChunkStream that closes the transport when the stream ends (or is dropped)."""

    def __init__(self, inner: ChunkStream, transport: Transport) -> None:
        super().__init__(iter(inner), started=inner.started, content_type=inner.content_type)
        self._inner = inner
        self._transport = transport

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        finally:
            self.first_byte_s, self.total_s = self._inner.first_byte_s, self._inner.total_s
            self.chunks, self.bytes = self._inner.chunks, self._inner.bytes
            self._transport.close()


def _encode(data: Any) -> tuple[bytes, str]:
    if isinstance(data, bytes):
        return data, "application/json"
    if isinstance(data, str):
        return data.encode(), "application/json"
    data = _plain(data)
    if isinstance(data, dict):
        return orjson.dumps(data), "application/json"
    return orjson.dumps({"instances": list(data)}), "application/json"


def _plain(data: Any) -> Any:
    """A DataFrame or an array as nested lists; anything else as it is."""
    if hasattr(data, "to_numpy"):  # pandas
        data = data.to_numpy()
    if hasattr(data, "tolist"):  # numpy
        data = data.tolist()
    return data
