"""SageMaker's runtime front on 127.0.0.1: ``InvokeEndpoint`` on the wire, forwarding to a real server.

moto's InvokeEndpoint answers canned bodies and never an error, so the chunking client's SageMaker transport
is tested against this instead: boto3's real sagemaker-runtime client is pointed at it
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``), and everything on the client side runs as against AWS: request
signing and serialisation, the connection pool, botocore's retry handler and its rest-json error parsing.

What it answers is the runtime API's documented wire format: ``POST /endpoints/NAME/invocations`` with
the body as it is; a container's error as HTTP 424 with ``x-amzn-ErrorType: ModelError`` and a JSON body
carrying ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``; the service's own refusals
(``ThrottlingException``, ``ValidationError``, ``UnrecognizedClientException``) as their error types; a
body over the payload limit as a bare 413 without an error type. The script says which request gets what.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from infra.scripted_http import read_body

__all__ = ["FrontScript", "SageMakerFront"]

ACCOUNT = "123456789012"


@dataclass
class FrontScript:
    container_url: str  # where the endpoint's container answers POST /invocations
    endpoint: str = "digits"
    throttle: set[int] = field(default_factory=set)  # request numbers (1-based) answered ThrottlingException
    cut: set[int] = field(default_factory=set)  # request numbers whose answer is cut off mid-body
    max_body: int | None = None  # larger bodies get the front's bare 413
    timeout_over_rows: int | None = None  # JSON bodies with more rows: the container "timed out" (ModelError)
    refuse_credentials: bool = False


class SageMakerFront:
    def __init__(self, script: FrontScript) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []  # n, path, status
        self._lock = threading.Lock()
        self._client = httpx.AsyncClient(timeout=30)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            number = len(self.requests) + 1
            record: dict[str, Any] = {"n": number, "path": scope["path"], "headers": headers}
            self.requests.append(record)
        status, answer_headers, answer, cut = await self._answer(number, scope, headers, body)
        record["status"] = status
        declared = len(answer) + (1000 if cut else 0)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*answer_headers, (b"content-length", str(declared).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _answer(
        self, number: int, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        script = self.script
        if script.refuse_credentials:
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if scope["method"] != "POST" or scope["path"] != f"/endpoints/{script.endpoint}/invocations":
            name = scope["path"].split("/")[2] if scope["path"].count("/") >= 3 else "?"
            return _error(400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found.")
        if number in script.throttle:
            return _error(400, "ThrottlingException", "Rate exceeded")
        if script.max_body is not None and len(body) > script.max_body:
            text = f"HTTP content length exceeded {script.max_body} bytes."
            return 413, [(b"content-type", b"text/plain")], text.encode(), False
        if script.timeout_over_rows is not None and len(orjson.loads(body)["instances"]) > script.timeout_over_rows:
            message = (
                'Received server error (0) from primary with message "Your invocation timed out while waiting '
                "for a response from container primary. Review the latency metrics for each container in "
                'Amazon CloudWatch, resolve the issue, and try again."'
            )
            return _model_error(0, "", message, script.endpoint)
        # What InvokeEndpoint hands the container: the body, its ContentType and the Accept the caller asked for.
        forwarded = {"content-type": headers.get("content-type", "application/json")}
        if "accept" in headers:
            forwarded["accept"] = headers["accept"]
        reply = await self._client.post(f"{script.container_url}/invocations", content=body, headers=forwarded)
        if reply.status_code != 200:
            message = (
                f"Received {'client' if reply.status_code < 500 else 'server'} error ({reply.status_code}) from "
                f'primary with message "{reply.text}". See the log stream for more information.'
            )
            return _model_error(reply.status_code, reply.text, message, script.endpoint)
        answer_headers = [
            (b"content-type", reply.headers["content-type"].encode()),
            (b"x-amzn-invoked-production-variant", b"AllTraffic"),
        ]
        return 200, answer_headers, reply.content, number in script.cut

    def statuses(self) -> list[int]:
        return [r["status"] for r in self.requests]


def _error(status: int, code: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-errortype", f"{code}:http://internal.amazon.com/".encode()),
    ]
    return status, headers, orjson.dumps({"message": message}), False


def _model_error(
    original: int, original_message: str, message: str, endpoint: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    document: dict[str, Any] = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if 400 <= original < 500 else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{endpoint}",
        "Message": message,
    }
    if original:
        document.update(OriginalStatusCode=original, OriginalMessage=original_message)
    headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", b"ModelError:http://internal.amazon.com/")]
    return 424, headers, orjson.dumps(document), False
