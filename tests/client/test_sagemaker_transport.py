"""The chunking client on a SageMaker endpoint: InvokeEndpoint through a real boto3 sagemaker-runtime client.

moto answers InvokeEndpoint with canned bodies only (the CLI test in tests/deploy uses that), never with a
model's error, a throttle or a cut connection. Here boto3 is pointed at tests/infra/sagemaker_front.py, which
speaks the runtime API's wire format and forwards each call over real HTTP to the scripted server of
test_chunked.py, wrapping the container's errors in ``ModelError`` as SageMaker does. Everything on the client
side is the real code path: the client Shipyard makes, signing, botocore's retry handler and error parsing,
the transport, the invoker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.moto import MotoServer
from infra.sagemaker_front import FrontScript, SageMakerFront
from infra.scripted_http import Running, Script, serve_asgi
from infra.scripted_http import answer as doubled
from shipyard.client.chunked import ChunkedInvoker, Limits, invoke_all
from shipyard.client.sagemaker import SageMakerTransport, status_of
from shipyard.cloud.session import Aws
from shipyard.errors import CredentialsError, InvokeError

pytestmark = pytest.mark.integration

Start = Callable[[Script], Running]
Front = Callable[[FrontScript], SageMakerFront]
ENDPOINT = "digits"


@pytest.fixture
def front(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Front]:
    """``front(FrontScript(...))``: SageMaker's runtime front on a free port, boto3's sagemaker-runtime aimed at it
    (the other services still go to moto; the credentials are the aws fixture's dummy ones)."""
    stops: list[Callable[[], None]] = []

    def start(script: FrontScript) -> SageMakerFront:
        app = SageMakerFront(script)
        url, stop = serve_asgi(app)
        stops.append(stop)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        # A user's own retry setting: the runtime client must still make one attempt per call (the invoker
        # retries), so hidden botocore retries would show up as extra requests here.
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
        return app

    yield start
    for stop in stops:
        stop()


def transport(endpoint: str = ENDPOINT, *, connections: int = 4, read_timeout_s: float = 10.0) -> SageMakerTransport:
    client = Aws("us-east-1").runtime_client(read_timeout_s=read_timeout_s, connections=connections)
    return SageMakerTransport(client, endpoint)


@pytest.mark.parametrize(
    ("response", "status"),
    [
        ({"Error": {"Code": "ModelError"}, "OriginalStatusCode": 413, "OriginalMessage": "too big"}, 413),
        ({"Error": {"Code": "ModelError"}, "OriginalStatusCode": 503, "OriginalMessage": "busy"}, 503),
        ({"Error": {"Code": "ModelError"}, "OriginalStatusCode": 400, "OriginalMessage": "bad row"}, 400),
        (
            {
                "Error": {
                    "Code": "ModelError",
                    "Message": "Received server error (0) from primary with message "
                    '"Your invocation timed out while waiting for a response from container primary."',
                },
                "OriginalStatusCode": 0,
            },
            504,
        ),
        ({"Error": {"Code": "ModelError", "Message": "the container crashed"}}, 424),
        ({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, 429),
        ({"Error": {"Code": "ModelNotReadyException", "Message": "still provisioning"}}, 429),
        ({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, 503),
        ({"Error": {"Code": "InternalFailure", "Message": "oops"}}, 500),
        ({"Error": {"Code": "ValidationError", "Message": "Endpoint digits of account 1 not found."}}, 400),
        ({"Error": {"Code": "ValidationError", "Message": "Value exceeds the maximum length"}}, 400),
        (  # the front's own payload limit: a bare 413, no error type (botocore names it by the status)
            {
                "Error": {"Code": "413", "Message": "Request Entity Too Large"},
                "ResponseMetadata": {"HTTPStatusCode": 413},
            },
            413,
        ),
        ({"Error": {"Code": "SomethingNew"}, "ResponseMetadata": {"HTTPStatusCode": 502}}, 502),
    ],
)
def test_runtime_errors_map_to_the_statuses_the_invoker_acts_on(response: dict[str, Any], status: int) -> None:
    assert status_of(response)[0] == status


def test_model_error_carries_the_containers_message() -> None:
    status, message = status_of(
        {"Error": {"Code": "ModelError", "Message": "wrapped"}, "OriginalStatusCode": 400, "OriginalMessage": "x<0"}
    )
    assert (status, message) == (400, "x<0")


def test_10000_rows_through_invoke_endpoint_with_503s_and_a_413(scripted_server: Start, front: Front) -> None:
    # The container throttles requests 2, 5 and 9 and refuses request 4 as too large; SageMaker's front wraps
    # each in a ModelError (424). The invoker retries the 503s, splits the 413, and answers every row once.
    server = scripted_server(Script(fail={2: 503, 4: 413, 5: 503, 9: 503}, seconds_per_row=0.0001))
    sagemaker = front(FrontScript(server.url))
    sender = transport()
    invoker = ChunkedInvoker(sender, limits=Limits(6 * 1024 * 1024, 2.0), concurrency=4, backoff_s=0.01)
    items = list(range(10_000))
    results: list[int] = []
    try:
        summary = invoker.run(items, on_results=lambda first, predictions: results.extend(predictions))
    finally:
        sender.close()
    assert results == [doubled(i) for i in items]
    statuses = server.app.statuses()
    assert statuses.count(503) == 3 and statuses.count(413) == 1
    assert summary.retries == 3 and summary.splits >= 1
    assert summary.statuses.get(503) == 3 and summary.statuses.get(413) == 1
    assert server.app.ok_rows() == 10_000
    assert sagemaker.statuses().count(424) == 4  # the container's errors, as ModelError
    assert len(sagemaker.requests) == len(server.app.requests)  # botocore retried nothing on its own
    first = sagemaker.requests[0]["headers"]
    assert first["content-type"] == "application/json"
    assert first["authorization"].startswith("AWS4-HMAC-SHA256")  # a signed request, as AWS gets it


def test_a_throttled_or_cut_off_call_is_retried(scripted_server: Start, front: Front) -> None:
    server = scripted_server(Script())
    sagemaker = front(FrontScript(server.url, throttle={1}, cut={2}))
    sender = transport()
    results: list[int] = []
    try:
        summary = ChunkedInvoker(sender, concurrency=1, backoff_s=0.001).run(
            [1, 2, 3], on_results=lambda first, predictions: results.extend(predictions)
        )
    finally:
        sender.close()
    assert results == [2, 4, 6]
    assert sagemaker.statuses() == [400, 200, 200]  # throttled, answered but cut off, answered
    assert summary.retries == 2 and summary.statuses.get(429) == 1 and summary.statuses.get(599) == 1


def test_a_wrong_endpoint_is_not_retried(scripted_server: Start, front: Front) -> None:
    sagemaker = front(FrontScript(scripted_server(Script()).url))
    sender = transport("nope")
    try:
        with pytest.raises(InvokeError, match="Endpoint nope of account 123456789012 not found") as caught:
            invoke_all(sender, list(range(10)), backoff_s=0.001)
    finally:
        sender.close()
    assert caught.value.status == 400
    assert len(sagemaker.requests) == 1


def test_refused_credentials_stop_with_advice(scripted_server: Start, front: Front) -> None:
    sagemaker = front(FrontScript(scripted_server(Script()).url, refuse_credentials=True))
    sender = transport()
    try:
        with pytest.raises(CredentialsError, match="aws sso login"):
            invoke_all(sender, list(range(10)), backoff_s=0.001)
    finally:
        sender.close()
    assert len(sagemaker.requests) == 1


def test_a_container_time_out_splits_the_chunk(scripted_server: Start, front: Front) -> None:
    # SageMaker cuts a container that takes longer than its limit: ModelError, no status, "timed out".
    # Requests of more than 8 rows time out here; the invoker halves them until they fit.
    server = scripted_server(Script())
    front(FrontScript(server.url, timeout_over_rows=8))
    sender = transport()
    results: list[int] = []
    try:
        summary = ChunkedInvoker(sender, concurrency=2, backoff_s=0.001).run(
            list(range(100)), on_results=lambda first, predictions: results.extend(predictions)
        )
    finally:
        sender.close()
    assert results == [doubled(i) for i in range(100)]
    assert summary.splits >= 1 and summary.statuses.get(504, 0) >= 1
    assert max(r["rows"] for r in server.app.requests) <= 8


def test_the_fronts_payload_limit_is_learned_from_bare_413s(scripted_server: Start, front: Front) -> None:
    # Over its limit, SageMaker's front answers a bare 413 (no error type) before the container sees the body.
    server = scripted_server(Script())
    sagemaker = front(FrontScript(server.url, max_body=30_000))
    texts = [f"{i:05d} " + "y" * 500 for i in range(400)]
    sender = transport()
    try:
        assert invoke_all(sender, texts, limits=Limits(1_000_000, 60.0), concurrency=2) == [t.upper() for t in texts]
    finally:
        sender.close()
    assert 413 in sagemaker.statuses()
    assert all(r["bytes"] <= 30_000 for r in server.app.requests)
