"""A scripted sagemaker-runtime ``InvokeEndpointWithResponseStream`` over real HTTP.

moto 5.2.5 does not implement InvokeEndpointWithResponseStream (its server answers 404 for
``POST /endpoints/NAME/invocations-response-stream``), so tests that read a SageMaker stream point a real boto3
client (``endpoint_url``) at this server instead. It answers with AWS's event-stream framing, written here
(botocore has only the decoder, :mod:`botocore.eventstream`, which reads it back in the client under test):
each message is a prelude (total length, headers length, CRC32 of those 8 bytes), headers (name, type 7 =
string, value), the payload and a CRC32 of everything before. PayloadPart events carry the bytes as the
payload; ModelStreamError / InternalStreamFailure are ``:message-type: exception`` messages with a JSON body.
Every request is recorded (path, headers, body) for the tests to check against the API's shapes.
"""

from __future__ import annotations

import http.server
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["EventStreamServer", "exception_message", "message", "payload_part"]


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    head = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    return body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)


def payload_part(data: bytes) -> bytes:
    return message(
        {":message-type": "event", ":event-type": "PayloadPart", ":content-type": "application/octet-stream"}, data
    )


def exception_message(kind: str, body: dict[str, Any]) -> bytes:
    return message(
        {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
        orjson.dumps(body),
    )


@dataclass
class EventStreamServer:
    """``script``: what to answer, in order: bytes (a PayloadPart), ``("sleep", seconds)``, or
    ``("exception", kind, body)``; or ``status`` with ``error`` for an error answer before any stream."""

    script: list[Any] = field(default_factory=list)
    status: int = 200
    error: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> EventStreamServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                owner.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": self.rfile.read(length)}
                )
                if owner.status != 200:
                    body = orjson.dumps(owner.error or {})
                    self.send_response(owner.status)
                    self.send_header("content-type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-errortype", (owner.error or {}).get("__type", "ModelError"))
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/vnd.amazon.eventstream")
                self.send_header("x-amzn-sagemaker-content-type", "application/jsonlines")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for step in owner.script:
                    if isinstance(step, tuple) and step[0] == "sleep":
                        time.sleep(step[1])
                        continue
                    data = exception_message(step[1], step[2]) if isinstance(step, tuple) else payload_part(step)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
