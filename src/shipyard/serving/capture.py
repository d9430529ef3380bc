"""Data capture: a sample of requests and answers, in SageMaker's data-capture format, written off the request path.

Each captured invocation becomes one JSON line, the record SageMaker's own data capture writes::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "5.1,3.5,1.4,0.2", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "{\\"predictions\\": [0]}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "…", "inferenceId": "…", "inferenceTime": "2026-11-23T10:00:00Z"},
     "eventVersion": "0"}

Files land under ``DESTINATION/YYYY/MM/DD/HH/MM-SS-mmm-<id>.jsonl`` (UTC), on a local directory or under an
``s3://bucket/prefix`` (through an :class:`ObjectStore` the entry point hands in; serving imports no boto3).

The request path pays one sampling check and one ``deque.append`` (:meth:`Capture.offer`); encoding, file
and network I/O happen in one background thread that drains the queue every 50 ms. A full queue drops the
record and counts it (``shipyard_capture_dropped_total{reason="queue_full"}``): capture never slows or fails
a request. :meth:`Capture.close` (the server's shutdown, i.e. SIGTERM) drains and flushes what is left.
"""

from __future__ import annotations

import base64
import collections
import functools
import logging
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = [
    "Capture",
    "CaptureSink",
    "DirectorySink",
    "ObjectStore",
    "S3Sink",
    "capture_for",
    "encode_record",
    "sink_for",
]

log = logging.getLogger("shipyard.capture")

#: (time, inference id, request content type, request body, answer content type, answer body)
Item = tuple[float, bytes | None, str | None, bytes, bytes, bytes]

_CSV_TYPES = frozenset({"text/csv"})
_JSON_TYPES = frozenset({"application/json", "application/jsonlines", "application/jsonl", "application/x-ndjson"})
_ROTATE_BYTES = 64 * 1024 * 1024  # a new file past this size, so readers never face one huge file
_DRAIN_INTERVAL_S = 0.05


class CaptureSink(Protocol):
    """Where captured lines go. ``hour`` is ``YYYY/MM/DD/HH`` (UTC) of the records in ``lines``."""

    def write(self, hour: str, lines: list[bytes]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@functools.cache
def _counters() -> tuple[Any, Any]:
    # Created on first use, in the worker, after the supervisor has set PROMETHEUS_MULTIPROC_DIR.
    from prometheus_client import Counter

    written = Counter("shipyard_capture_written", "Captured records written to the destination")
    dropped = Counter("shipyard_capture_dropped", "Captured records dropped", ["reason"])
    return written, dropped


class Capture:
    """A sampled, bounded, non-blocking capture of invocations (see the module docstring)."""

    def __init__(
        self,
        sink: CaptureSink,
        percent: float = 100.0,
        *,
        max_queue: int = 10_000,
        flush_seconds: float = 60.0,
    ) -> None:
        if not 0.0 < percent <= 100.0:
            raise ValueError(f"capture percent must be in (0, 100], got {percent}")
        self.sink = sink
        self.percent = percent
        self._fraction = percent / 100.0
        self._everything = percent >= 100.0
        self._random = random.random
        self._max = max_queue
        self._queue: collections.deque[Item] = collections.deque()
        self._flush_seconds = flush_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one drain at a time (the thread, or close() without a thread)
        self._ids = _EventIds()
        self._written, dropped = _counters()
        self._queue_full = dropped.labels("queue_full")
        self._write_error = dropped.labels("write_error")
        self.dropped = 0

    # -- the request path ------------------------------------------------------------------------
    def offer(
        self, inference_id: bytes | None, content_type: str | None, request: bytes, answer_type: bytes, answer: bytes
    ) -> None:
        """Capture one answered invocation if it is sampled. Never blocks, never raises."""
        if not self._everything and self._random() >= self._fraction:
            return
        if len(self._queue) >= self._max:
            self.dropped += 1
            self._queue_full.inc()
            return
        self._queue.append((time.time(), inference_id, content_type, request, answer_type, answer))

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shipyard-capture", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued and flush the destination (called on shutdown / SIGTERM)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self._drain()
            self._flush()
            self._close_sink()

    def _run(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.wait(_DRAIN_INTERVAL_S):
            self._drain()
            if time.monotonic() - last_flush >= self._flush_seconds:
                self._flush()
                last_flush = time.monotonic()
        self._drain()
        self._flush()
        self._close_sink()

    # -- the writer thread -----------------------------------------------------------------------
    def _drain(self) -> None:
        with self._lock:
            queue = self._queue
            count = len(queue)
            if not count:
                return
            by_hour: dict[str, list[bytes]] = {}
            hour_of = _hour_of
            next_id = self._ids.next
            for _ in range(count):
                item = queue.popleft()
                by_hour.setdefault(hour_of(int(item[0])), []).append(encode_record(item, next_id()) + b"\n")
            for hour, lines in by_hour.items():
                try:
                    self.sink.write(hour, lines)
                except Exception as exc:  # a full disk or a refused upload must not take the server down
                    self.dropped += len(lines)
                    self._write_error.inc(len(lines))
                    log.error("data capture: writing %d records failed: %s", len(lines), exc)
                else:
                    self._written.inc(len(lines))

    def _flush(self) -> None:
        try:
            self.sink.flush()
        except Exception as exc:
            log.error("data capture: flushing failed: %s", exc)

    def _close_sink(self) -> None:
        try:
            self.sink.close()
        except Exception as exc:
            log.error("data capture: closing failed: %s", exc)


# -- the record ----------------------------------------------------------------------------------
def encode_record(item: Item, event_id: str) -> bytes:
    """One capture record (without its newline) for ``item``.

    Assembled from cached pieces (the same few content types and seconds recur): only the payloads and
    ids go through ``orjson.dumps`` each time, which keeps the writer thread at a few µs per record.
    """
    moment, inference_id, content_type, request, answer_type, answer = item
    dumps = orjson.dumps
    # no Content-Type: the server read the body as JSON, so that is what was observed
    head_in, encoding_in = _payload_parts(content_type or "application/json", "INPUT")
    head_out, encoding_out = _payload_parts(answer_type.decode("latin-1"), "OUTPUT")
    metadata = b'"eventId":' + dumps(event_id)
    if inference_id:
        metadata += b',"inferenceId":' + dumps(inference_id.decode("latin-1"))
    return b"".join(
        (
            b'{"captureData":{"endpointInput":',
            head_in,
            _data(request, encoding_in),
            b'},"endpointOutput":',
            head_out,
            _data(answer, encoding_out),
            b'}},"eventMetadata":{',
            metadata,
            b',"inferenceTime":',
            _iso_second(int(moment)),
            b'},"eventVersion":"0"}',
        )
    )


@functools.lru_cache(maxsize=64)
def _payload_parts(content_type: str, mode: str) -> tuple[bytes, str]:
    """The constant start of a payload object for this content type, and its text encoding (CSV, JSON or "")."""
    base = content_type.partition(";")[0].strip().lower()
    encoding = "CSV" if base in _CSV_TYPES else "JSON" if base in _JSON_TYPES else ""
    head = b'{"observedContentType":' + orjson.dumps(content_type) + b',"mode":"' + mode.encode() + b'",'
    return head, encoding


def _data(data: bytes, encoding: str) -> bytes:
    if encoding:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # not text after all: base64, like any other bytes
        else:
            return b'"data":' + orjson.dumps(text) + b',"encoding":"' + encoding.encode() + b'"'
    return b'"data":"' + base64.b64encode(data) + b'","encoding":"BASE64"'


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> bytes:
    return time.strftime('"%Y-%m-%dT%H:%M:%SZ"', time.gmtime(second)).encode()


@functools.lru_cache(maxsize=4)
def _hour_of_cached(hour: int) -> str:
    return time.strftime("%Y/%m/%d/%H", time.gmtime(hour * 3600))


def _hour_of(second: int) -> str:
    return _hour_of_cached(second // 3600)


class _EventIds:
    """UUID-shaped event ids, unique per process: a random prefix and a counter (uuid4 per record costs a syscall)."""

    def __init__(self) -> None:
        prefix = uuid.uuid4().hex
        self._head = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-"
        self._count = int(prefix[20:], 16)

    def next(self) -> str:
        self._count = (self._count + 1) & 0xFFFFFFFFFFFF
        return f"{self._head}{self._count:012x}"


def _file_name() -> str:
    now = time.time()
    stamp = time.strftime("%M-%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{uuid.uuid4().hex[:12]}.jsonl"


# -- destinations --------------------------------------------------------------------------------
class DirectorySink:
    """Append to ``ROOT/YYYY/MM/DD/HH/<name>.jsonl``: one file per process and hour, rotated past 64 MiB.

    Every :meth:`write` is one ``os.write`` of whole lines, so a reader sees complete records (except, at
    worst, the tail of the write in progress).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._hour: str | None = None
        self._fd: int | None = None
        self._size = 0
        self.files: list[Path] = []

    def write(self, hour: str, lines: list[bytes]) -> None:
        if hour != self._hour or self._fd is None or self._size >= _ROTATE_BYTES:
            self._open(hour)
        assert self._fd is not None
        data = memoryview(b"".join(lines))
        self._size += len(data)
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def _open(self, hour: str) -> None:
        self.close()
        directory = self.root / hour
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _file_name()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._hour, self._size = hour, 0
        self.files.append(path)

    def flush(self) -> None:
        """Nothing to do: every write already reached the file."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ObjectStore(Protocol):
    """Where the S3 sink puts its objects (:class:`shipyard.cloud.s3.CaptureStore` on AWS)."""

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class S3Sink:
    """Buffer per hour and upload one object per flush: ``s3://BUCKET/PREFIX/YYYY/MM/DD/HH/<name>.jsonl``.

    S3 objects cannot be appended to, so records are uploaded every ``flush_seconds`` (and whenever 8 MiB
    are buffered) to ``store``, which the entry point gives when the destination is ``s3://``.
    """

    max_buffer = 8 * 1024 * 1024

    def __init__(self, uri: str, store: ObjectStore | None = None) -> None:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri}")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise ValueError(f"{uri}: no bucket")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._store = store
        self._buffers: dict[str, list[bytes]] = {}
        self._size = 0
        self.keys: list[str] = []

    def _s3(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("capturing to s3:// needs boto3: pip install 'shipyard[aws]'")
        return self._store

    def write(self, hour: str, lines: list[bytes]) -> None:
        self._buffers.setdefault(hour, []).extend(lines)
        self._size += sum(map(len, lines))
        if self._size >= self.max_buffer:
            self.flush()

    def flush(self) -> None:
        buffers, self._buffers, self._size = self._buffers, {}, 0
        for hour, lines in buffers.items():
            key = f"{self.prefix}/{hour}/{_file_name()}" if self.prefix else f"{hour}/{_file_name()}"
            self._s3().put(self.bucket, key, b"".join(lines), "application/jsonl")
            self.keys.append(key)

    def close(self) -> None:
        self.flush()


def sink_for(destination: str, store: ObjectStore | None = None) -> CaptureSink:
    """A directory sink, or an S3 sink (writing to ``store``) for ``s3://`` destinations."""
    if destination.startswith("s3://"):
        return S3Sink(destination, store)
    return DirectorySink(destination)


def capture_for(
    destination: str | None,
    percent: float,
    *,
    max_queue: int = 10_000,
    flush_seconds: float = 60.0,
    store: ObjectStore | None = None,
) -> Capture | None:
    """The server's capture, or ``None`` when capture is off (no destination, or 0 %)."""
    if not destination or percent <= 0:
        return None
    return Capture(sink_for(destination, store), percent, max_queue=max_queue, flush_seconds=flush_seconds)
