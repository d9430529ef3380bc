"""Reading a streamed answer: chunks as they arrive, timed, with the server's mid-stream error raised.

A streaming server (:mod:`shipyard.serving.streaming`) sends its status with the first chunk, so an error after
it arrives as a last record ``{"ModelStreamError": {"ErrorCode": ..., "Message": ...}}`` on a line of its own,
and then the connection breaks (no end to the chunked body); :class:`ChunkStream` yields the chunks before it and
raises :class:`~shipyard.errors.InvokeError` for it (a break with no record raises too), the
same error a SageMaker ``ModelStreamError`` event gives (:func:`shipyard.cloud.runtime.
invoke_endpoint_with_response_stream`). It also times the stream: :attr:`ChunkStream.first_byte_s` and
:attr:`ChunkStream.total_s`, from the request's start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from shipyard.client.transport import server_message
from shipyard.errors import InvokeError

__all__ = ["ChunkStream", "http_stream"]

_ERROR = b'{"ModelStreamError":'
_LONGEST_RECORD = 1 << 16  # an error record's line read so far, at most


class ChunkStream:
    """An iterator of a streamed answer's chunks (bytes) that measures it as it goes."""

    def __init__(self, chunks: Iterator[bytes], *, started: float | None = None, content_type: str = "") -> None:
        self._chunks = chunks
        self.started = time.perf_counter() if started is None else started
        self.content_type = content_type
        self.first_byte_s: float | None = None
        self.total_s: float | None = None
        self.chunks = 0
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        """The chunks, less the error record: looked for at every line's start, across reads (a record split
        over reads, or PayloadParts, is found too; the bytes that may start one wait for the next read). A
        broken connection after the record raises the record's error."""
        held = b""  # the start of the last line, not yet passed on: it may be the start of an error record
        line_start = True  # the next byte read starts a line
        record: bytes | None = None  # the error record, once its start is found
        try:
            for chunk in self._chunks:
                if not chunk:
                    continue
                if record is not None:
                    record += chunk
                    if b"\n" in record or len(record) > _LONGEST_RECORD:
                        break
                    continue
                data = held + chunk
                at = 0 if line_start and data.startswith(_ERROR) else data.find(b"\n" + _ERROR) + 1
                if at or (line_start and data.startswith(_ERROR)):
                    if at:
                        yield self._counted(data[:at])
                    record = data[at:]
                    if b"\n" in record:
                        break
                    continue
                last = data.rfind(b"\n") + 1 if b"\n" in data else (0 if line_start else len(data))
                held = data[last:] if last < len(data) and _ERROR.startswith(data[last:]) else b""
                passed = data[: len(data) - len(held)]
                if passed:
                    yield self._counted(passed)
                line_start = data.endswith(b"\n") or bool(held)
        except InvokeError:
            if record is None:  # broken with no error record: that error
                if held:
                    yield self._counted(held)
                raise
        finally:
            self.total_s = time.perf_counter() - self.started
        if record is not None:
            close = getattr(self._chunks, "close", None)
            if close is not None:  # the connection is of no more use (it breaks after the record)
                close()
            raise InvokeError(_error_message(record), status=500)
        if held:
            yield self._counted(held)

    def _counted(self, chunk: bytes) -> bytes:
        if self.first_byte_s is None:
            self.first_byte_s = time.perf_counter() - self.started
        self.chunks += 1
        self.bytes += len(chunk)
        return chunk

    def summary(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks,
            "bytes": self.bytes,
            "first_byte_s": None if self.first_byte_s is None else round(self.first_byte_s, 6),
            "total_s": None if self.total_s is None else round(self.total_s, 6),
        }


def _error_message(record: bytes) -> str:
    try:
        error = orjson.loads(record.split(b"\n", 1)[0])["ModelStreamError"]
        return f"ModelStreamError {error.get('ErrorCode', '')}: {error.get('Message', '')}"
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return f"ModelStreamError: {record[:500].decode('utf-8', 'replace')}"


def http_stream(
    client: httpx.Client,
    url: httpx.URL | str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout_s: float,
    where: str,
) -> ChunkStream:
    """``POST`` and hand back the answer's chunks as they arrive (``timeout_s``: the most to wait for any one
    read). An error status raises :class:`InvokeError` at once, with the server's message."""
    started = time.perf_counter()
    request = client.build_request("POST", url, content=body, headers=headers, timeout=timeout_s)
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException:
        raise InvokeError(f"no answer from {where} within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise InvokeError(f"cannot reach {where}: {exc}") from None
    if response.status_code >= 400:
        data = response.read()
        response.close()
        raise InvokeError(f"{response.status_code}: {server_message(data)}", status=response.status_code)

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.iter_raw()
        except httpx.TimeoutException:
            raise InvokeError(f"no chunk from {where} within {timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise InvokeError(f"the stream from {where} broke: {exc}") from None
        finally:
            response.close()

    return ChunkStream(chunks(), started=started, content_type=response.headers.get("content-type", ""))
