"""The local side of a transform job: what SageMaker's batch transform does between S3 and the container.

For every input file (every file under a directory, relative paths kept): the records split by ``SplitType``,
each one through the ``InputFilter``, packed by ``BatchStrategy`` under ``MaxPayloadInMB`` (client/records.py),
sent ``MaxConcurrentTransforms`` at a time, the answers written in order to ``<input>.out`` assembled by
``AssembleWith``; with ``JoinSource: Input`` or an ``OutputFilter`` each answer is taken apart into one answer
per record first, joined with its input record and filtered. A request that fails after its retries fails its
file (as it fails SageMaker's job): no ``.out`` for it (an earlier run's is removed), the file, its records and
the server's message in the result; the other files are still transformed.

Performance: a MultiRecord run without filters or joins never looks at single records: the file is read in
blocks and cut at the last newline under the payload limit (the slow path is taken only for a piece holding
an empty line or a ``\\r``), and answers go to disk as they come, so 1 M rows never live as Python objects.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from shipyard.client.records import (
    Batch,
    TransformSettings,
    assemble,
    join_input,
    output_name,
    pack,
    payload_limit,
    split_records,
    transform_settings,
)
from shipyard.client.transport import Reply, Transport, endpoint_url, server_message
from shipyard.codecs.media import parse_media_type
from shipyard.deploy.transform.filters import RecordFilter, record_filter
from shipyard.deploy.transform.options import TransformOptions
from shipyard.errors import UsageError

__all__ = [
    "FileFailure",
    "FileResult",
    "Progress",
    "TransformResult",
    "execution_parameters",
    "input_files",
    "settings_for",
    "transform_files",
]

_BLOCK = 8 * 1024 * 1024
_RETRIED = (429, 500, 502, 503, 504, 598, 599)


@dataclass(frozen=True, slots=True)
class FileFailure:
    """Why one input file has no output: the records (from 1) of the request that failed, and the message."""

    first_record: int
    records: int
    status: int | None
    message: str


@dataclass(slots=True)
class FileResult:
    input: str  # relative to the input location
    output: str | None  # the .out file written (None: failed)
    records: int = 0
    requests: int = 0
    bytes_in: int = 0
    failure: FileFailure | None = None


@dataclass(slots=True)
class TransformResult:
    settings: TransformSettings
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.failure is not None]


class Progress(Protocol):
    def begin(self, files: int, total_bytes: int) -> None: ...

    def advance(self, bytes_done: int, records: int) -> None: ...

    def file_done(self, result: FileResult) -> None: ...


class _Quiet:
    def begin(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, bytes_done: int, records: int) -> None:
        pass

    def file_done(self, result: FileResult) -> None:
        pass


def execution_parameters(url: str, timeout_s: float = 10.0) -> object:
    """``GET /execution-parameters``' JSON, or None where the container has no such route (SageMaker then
    uses the job's settings or its defaults)."""
    try:
        response = httpx.get(endpoint_url(url, "/execution-parameters"), timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def settings_for(options: TransformOptions, hints: object) -> TransformSettings:
    return transform_settings(
        hints, max_concurrent=options.max_concurrent, strategy=options.strategy, max_payload_mb=options.max_payload_mb
    )


def input_files(location: str) -> list[tuple[str, Path]]:
    """Every file of a local input (a file: itself; a directory: every file under it, sorted), with its path
    relative to the input (what its output keeps)."""
    root = Path(location)
    if root.is_file():
        return [(root.name, root)]
    if not root.is_dir():
        raise UsageError(f"input {location}: no such file or directory")
    found = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*")) if p.is_file()]
    if not found:
        raise UsageError(f"input {location}: the directory holds no files")
    return found


def transform_files(
    transport: Transport,
    options: TransformOptions,
    settings: TransformSettings,
    output_dir: Path,
    *,
    progress: Progress | None = None,
) -> TransformResult:
    """Transform every input file through ``transport`` into ``output_dir``; see the module's docstring."""
    shown = progress or _Quiet()
    files = input_files(options.input)
    result = TransformResult(settings)
    shown.begin(len(files), sum(p.stat().st_size for _, p in files))
    started = time.perf_counter()
    content_type = options.media_type or "application/json"
    in_filter = record_filter(options.input_filter, content_type, option="input_filter")
    out_type = content_type if options.join_source == "Input" else options.answer_type
    out_filter = record_filter(options.output_filter, out_type, option="output_filter")
    with ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="transform") as pool:
        for relative, path in files:
            target = output_dir / output_name(relative)
            one = _File(transport, options, settings, pool, shown, content_type, in_filter, out_filter)
            file_result = one.run(relative, path, target)
            result.files.append(file_result)
            shown.file_done(file_result)
    result.seconds = time.perf_counter() - started
    return result


_Pending = tuple[Batch, list[bytes] | None, "Future[Reply]"]


class _File:
    def __init__(
        self,
        transport: Transport,
        options: TransformOptions,
        settings: TransformSettings,
        pool: ThreadPoolExecutor,
        progress: Progress,
        content_type: str,
        in_filter: RecordFilter | None,
        out_filter: RecordFilter | None,
    ) -> None:
        self.transport, self.options, self.settings, self.pool = transport, options, settings, pool
        self.progress, self.content_type = progress, content_type
        self.in_filter, self.out_filter = in_filter, out_filter
        self.accept = options.answer_type

    def run(self, relative: str, path: Path, target: Path) -> FileResult:
        result = FileResult(relative, None, bytes_in=path.stat().st_size)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        window: deque[_Pending] = deque()
        depth = self.settings.max_concurrent * 2
        try:
            with partial.open("wb") as sink:
                try:
                    for batch, originals in self._batches(path):
                        window.append((batch, originals, self.pool.submit(self._send, batch.body)))
                        result.requests += 1
                        while len(window) >= depth:
                            self._write(window.popleft(), sink, result)
                except UsageError as exc:  # a record over the limit, a filter that cannot apply
                    while window:
                        self._write(window.popleft(), sink, result)
                    raise _Failed(FileFailure(result.records + 1, 0, None, str(exc))) from None
                while window:
                    self._write(window.popleft(), sink, result)
        except _Failed as failed:
            for _, _, future in window:
                future.cancel()
            for _, _, future in window:
                if not future.cancelled():
                    future.exception()  # wait for it: nothing runs on after the file is done
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)  # an earlier run's output is not this run's: none is left for it
            result.failure = failed.failure
            return result
        os.replace(partial, target)
        result.output = str(target)
        return result

    def _send(self, body: bytes) -> Reply:
        reply = self.transport.post(
            body, content_type=self.content_type, accept=self.accept, timeout_s=self.options.timeout_s
        )
        for attempt in range(self.options.max_retries):
            if reply.status < 400 or reply.status not in _RETRIED:
                break
            time.sleep(min(2.0, reply.retry_after if reply.retry_after is not None else 0.1 * 2**attempt))
            reply = self.transport.post(
                body, content_type=self.content_type, accept=self.accept, timeout_s=self.options.timeout_s
            )
        return reply

    def _write(self, pending: _Pending, sink: _Sink, result: FileResult) -> None:
        batch, originals, future = pending
        reply = future.result()
        if reply.status >= 400:
            raise _Failed(FileFailure(batch.first + 1, batch.records, reply.status, server_message(reply.body)))
        if originals is None:
            sink.write(b"".join(assemble((reply.body,), self.options.assemble_with)))
        else:
            try:
                answers = _answers(reply.body, batch.records, reply.content_type or self.accept)
                lines = [self._finish(record, answer) for record, answer in zip(originals, answers, strict=True)]
            except UsageError as exc:
                raise _Failed(FileFailure(batch.first + 1, batch.records, reply.status, str(exc))) from None
            sink.write(b"".join(assemble(lines, self.options.assemble_with)))
        result.records += batch.records
        self.progress.advance(len(batch.body), batch.records)

    def _finish(self, record: bytes, answer: bytes) -> bytes:
        joined = join_input(record, answer, self.content_type) if self.options.join_source == "Input" else answer
        return self.out_filter(joined) if self.out_filter is not None else joined

    def _batches(self, path: Path) -> Iterator[tuple[Batch, list[bytes] | None]]:
        strategy, mb = self.settings.strategy, self.settings.max_payload_mb
        if self.options.split_type == "None":
            data = path.read_bytes()
            record = self.in_filter(data) if self.in_filter is not None else data
            for batch in pack([record], "SingleRecord", mb):
                yield batch, ([data] if self.options.per_record else None)
            return
        if strategy == "MultiRecord" and self.in_filter is None and not self.options.per_record:
            for batch in _fast_batches(path, mb):
                yield batch, None
            return
        originals: dict[int, bytes] = {}
        keep = self.options.per_record

        def filtered(records: Iterable[bytes]) -> Iterator[bytes]:
            for index, record in enumerate(records):
                if keep:
                    originals[index] = record
                yield self.in_filter(record) if self.in_filter is not None else record

        for batch in pack(filtered(_lines(path)), strategy, mb):
            kept = [originals.pop(i) for i in range(batch.first, batch.first + batch.records)] if keep else None
            yield batch, kept


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Failed(Exception):
    def __init__(self, failure: FileFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _lines(path: Path) -> Iterator[bytes]:
    """The Line records of a file, read in blocks (a record never held twice)."""
    carry = b""
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            data = carry + block if carry else block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            yield from split_records(data[: cut + 1], "Line")
            carry = data[cut + 1 :]
    if carry:
        yield from split_records(carry, "Line")


def _fast_batches(path: Path, max_payload_mb: int) -> Iterator[Batch]:
    """MultiRecord batches of a file's lines, cut at the last newline under the limit without splitting records
    (what :func:`pack` over :func:`split_records` makes, byte for byte)."""
    limit = payload_limit(max_payload_mb) or (1 << 62)
    block = max(_BLOCK, min(limit, 1 << 26) * 2)
    index = 0
    carry = b""
    with path.open("rb") as source:
        eof = False
        while not eof:
            chunk = source.read(block)
            eof = not chunk
            data = carry + chunk if carry else chunk
            pos, size = 0, len(data)
            while pos < size:
                while pos < size and data[pos] in (10, 13) and (data[pos] == 10 or data[pos : pos + 2] == b"\r\n"):
                    pos += 1  # empty lines are no records
                if pos >= size or (size - pos <= limit and not eof):
                    break  # wait for more: a batch is as full as the limit allows
                if size - pos <= limit:
                    cut = size
                else:
                    cut = data.rfind(b"\n", pos, pos + limit + 1)
                    if cut < 0:  # no newline within the limit: a record over it, which pack reports
                        cut = data.find(b"\n", pos)
                        cut = size if cut < 0 else cut
                body = data[pos:cut]
                if body.endswith(b"\n") or body.endswith(b"\r"):
                    body = body.rstrip(b"\r\n")
                if b"\r" in body or b"\n\n" in body or len(body) > limit:
                    for batch in pack(split_records(body, "Line"), "MultiRecord", max_payload_mb):
                        yield Batch(batch.body, batch.first + index, batch.records)
                        index += batch.records
                elif body:
                    records = body.count(b"\n") + 1
                    yield Batch(body, index, records)
                    index += records
                pos = cut + 1
            carry = data[pos:] if pos < size else b""


def _answers(body: bytes, records: int, content_type: str) -> list[bytes]:
    """One answer per record of a MultiRecord request: a JSON array (or Shipyard's ``{"predictions": [...]}``)
    of that length, else one line each."""
    parsed = parse_media_type(content_type)
    media = parsed.essence if parsed is not None else ""
    if media == "application/json":
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("predictions"), list):
            document = document["predictions"]
        if isinstance(document, list) and len(document) == records:
            return [orjson.dumps(item) for item in document]
        if records == 1 and document is not None:
            return [orjson.dumps(document)]
    lines = list(split_records(body, "Line"))
    if len(lines) != records:
        raise UsageError(f"the answer holds {len(lines)} records for the {records} sent: they cannot be joined")
    return lines
