"""The ``--auth iam`` hook: a request signed through HTTPTransport reaches a real HTTP server on 127.0.0.1,
and botocore, recomputing SigV4 over what that server received, finds the same signature."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shipyard.client.transport import HTTPTransport
from shipyard.cloud.session import Aws
from shipyard.cloud.signing import SigV4Signer

KEY, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-value"


class Received:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def aws(token: str | None = None) -> Aws:
    session = boto3.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, aws_session_token=token, region_name="eu-west-1"
    )
    return Aws("eu-west-1", session=session)


def recompute(url: str, got: dict[str, Any], token: str | None) -> str:
    """The signature botocore computes over the request as the server received it (its signed headers only)."""
    authorization = got["headers"]["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {k: v for k, v in got["headers"].items() if k.lower() in signed}
    request = AWSRequest(method="POST", url=f"{url}{got['path']}", data=got["body"], headers=headers)
    request.context["timestamp"] = got["headers"]["X-Amz-Date"]
    auth = SigV4Auth(Credentials(KEY, SECRET, token), "execute-api", "eu-west-1")
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


@pytest.mark.parametrize("token", [None, TOKEN])
def test_a_signed_request_carries_a_signature_botocore_recomputes(
    server: tuple[str, Received], token: str | None
) -> None:
    url, received = server
    transport = HTTPTransport(f"{url}/v1/predict", exact=True, headers={"x-extra": "1"}, sign=SigV4Signer(aws(token)))
    try:
        reply = transport.post(
            b'{"inputs": [1, 2]}', content_type="application/json", accept="application/json", timeout_s=5
        )
    finally:
        transport.close()
    assert reply.status == 200 and reply.json() == {"ok": True}
    (got,) = received.requests
    assert got["path"] == "/v1/predict"  # the exact URL, no /invocations appended
    assert got["body"] == b'{"inputs": [1, 2]}'
    authorization = got["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    scope = authorization.split("Credential=")[1].split(",")[0].split("/")
    assert scope[2:] == ["eu-west-1", "execute-api", "aws4_request"]
    assert scope[1] == got["headers"]["X-Amz-Date"][:8]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "content-type", "accept", "x-amz-date"} <= set(signed)
    assert got["headers"].get("X-Amz-Security-Token") == token
    assert authorization.split("Signature=")[1] == recompute(url, got, token)


def test_a_changed_body_no_longer_matches_the_signature(server: tuple[str, Received]) -> None:
    url, received = server
    transport = HTTPTransport(f"{url}/predict", exact=True, sign=SigV4Signer(aws()))
    try:
        transport.post(b"original", content_type="text/csv", accept=None, timeout_s=5)
    finally:
        transport.close()
    (got,) = received.requests
    tampered = {**got, "body": b"tampered"}
    assert got["headers"]["Authorization"].split("Signature=")[1] != recompute(url, tampered, None)


def test_without_exact_the_transport_still_posts_to_invocations(server: tuple[str, Received]) -> None:
    url, received = server
    transport = HTTPTransport(url)
    try:
        transport.post(b"x", content_type="text/plain", accept=None, timeout_s=5)
    finally:
        transport.close()
    assert received.requests[0]["path"] == "/invocations"
    assert "Authorization" not in received.requests[0]["headers"]
