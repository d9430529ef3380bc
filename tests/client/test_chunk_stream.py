"""ChunkStream: the server's mid-stream error record found wherever the reads (or PayloadParts) split it, and a
connection broken after data raised as an error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from shipyard.client.streaming import ChunkStream, http_stream
from shipyard.errors import InvokeError

RECORD = b'{"ModelStreamError": {"ErrorCode": "ModelError", "Message": "chunk 2 failed"}}\n'
DATA = b'{"i": 0}\n{"i": 1}'  # the last chunk before the error did not end its line
WIRE = DATA + b"\n" + RECORD  # as the server writes it: the record starts a line


def _read(parts: list[bytes]) -> tuple[bytes, InvokeError | None]:
    got = b""
    try:
        for chunk in ChunkStream(iter(parts)):
            got += chunk
    except InvokeError as exc:
        return got, exc
    return got, None


@pytest.mark.parametrize("cut", range(1, len(WIRE)))
def test_the_error_record_is_found_wherever_the_reads_split_it(cut: int) -> None:
    got, error = _read([WIRE[:cut], WIRE[cut:]])
    assert got == DATA + b"\n"  # the data before the record, none of the record
    assert error is not None and str(error) == "ModelStreamError ModelError: chunk 2 failed"


def test_the_error_record_split_byte_by_byte() -> None:
    got, error = _read([WIRE[i : i + 1] for i in range(len(WIRE))])
    assert got == DATA + b"\n"
    assert error is not None and "chunk 2 failed" in str(error)


def test_a_record_lookalike_mid_line_or_a_held_start_that_is_not_one_is_data() -> None:
    parts = [b'{"a": 1}\n{"Mod', b'el": 2}\n', b'x {"ModelStreamError": 3}\n', b'{"ModelStreamErr']
    got, error = _read(parts)
    assert error is None
    assert got == b"".join(parts)


def test_a_broken_connection_after_data_is_an_error() -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"i": 0}\n{"Mo'
        raise InvokeError("the stream from x broke: incomplete chunked read")

    got = b""
    with pytest.raises(InvokeError, match="broke"):
        for chunk in ChunkStream(parts()):
            got += chunk
    assert got == b'{"i": 0}\n{"Mo'  # what was held back, passed on before the error


def test_a_broken_http_connection_after_data_raises() -> None:
    """A chunked answer cut off with no terminating chunk and no error record: InvokeError, not a short 200."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n" + b'{"i": 0}\n' + b"\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with httpx.Client() as client:
            stream = http_stream(
                client, f"http://127.0.0.1:{port}/invocations", b"{}", headers={}, timeout_s=10, where="the server"
            )
            got = b""
            with pytest.raises(InvokeError, match="the stream from the server broke"):
                for chunk in stream:
                    got += chunk
        assert got == b'{"i": 0}\n'
        assert stream.total_s is not None
    finally:
        thread.join(5)
        listener.close()
