"""The chunking client on a SageMaker endpoint: InvokeEndpoint through a real boto3 sagemaker-runtime client.

moto answers InvokeEndpoint with canned bodies only (the CLI test in tests/deploy uses that), never with a
model's error, a throttle or a time-out. Here the operation is scripted (tests/infra/scripted_aws.py) the way
SageMaker's front answers: each call is forwarded over real HTTP to the scripted server of test_chunked.py,
and the container's error statuses come back wrapped in ``ModelError`` with ``OriginalStatusCode`` and
``OriginalMessage``, the shape of the runtime API's documented error. Everything else is the real code path:
the boto3 client Shipyard makes, its serialisation, botocore's error parsing, the transport, the invoker.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from infra.moto import MotoServer
from infra.scripted_aws import answer as script_aws
from infra.scripted_aws import error
from infra.scripted_http import Running, Script
from infra.scripted_http import answer as doubled
from shipyard.client.chunked import ChunkedInvoker, Limits, invoke_all
from shipyard.client.sagemaker import SageMakerTransport, status_of
from shipyard.cloud.session import Aws
from shipyard.errors import ClientError

pytestmark = pytest.mark.integration

Start = Callable[[Script], Running]
ENDPOINT = "digits"


def runtime(aws: MotoServer, connections: int = 4) -> Any:
    return Aws("us-east-1").runtime_client(read_timeout_s=10.0, connections=connections)


def sagemaker_front(url: str) -> Callable[[dict[str, Any]], Any]:
    """What SageMaker does with an InvokeEndpoint call: POST the body to the container, wrap its errors."""

    def forward(params: dict[str, Any]) -> Any:
        assert params["EndpointName"] == ENDPOINT
        reply = httpx.post(
            f"{url}/invocations", content=params["Body"], headers={"content-type": params["ContentType"]}
        )
        if reply.status_code == 200:
            return {"Body": io.BytesIO(reply.content), "ContentType": reply.headers["content-type"]}
        text = reply.text
        return error(
            "ModelError",
            f'Received client error ({reply.status_code}) from primary with message "{text}".',
            424,
            OriginalStatusCode=reply.status_code,
            OriginalMessage=text,
            LogStreamArn=f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}",
        )

    return forward


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
        ({"Error": {"Code": "ValidationError", "Message": "Request payload is too large"}}, 413),
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


def test_10000_rows_through_invoke_endpoint_with_503s_and_a_413(aws: MotoServer, scripted_server: Start) -> None:
    # The container throttles requests 2, 5 and 9 and refuses request 4 as too large; SageMaker wraps each
    # in a ModelError. The invoker retries the 503s, splits the 413, and every row is answered once, in order.
    server = scripted_server(Script(fail={2: 503, 4: 413, 5: 503, 9: 503}, seconds_per_row=0.0001))
    client = runtime(aws)
    calls = script_aws(client, "InvokeEndpoint", sagemaker_front(server.url))
    transport = SageMakerTransport(client, ENDPOINT)
    invoker = ChunkedInvoker(transport, limits=Limits(6 * 1024 * 1024, 2.0), concurrency=4, backoff_s=0.01)
    items = list(range(10_000))
    results: list[int] = []
    summary = invoker.run(items, on_results=lambda first, predictions: results.extend(predictions))
    transport.close()
    assert results == [doubled(i) for i in items]
    statuses = server.app.statuses()
    assert statuses.count(503) == 3 and statuses.count(413) == 1
    assert summary.retries == 3 and summary.splits >= 1
    assert summary.statuses.get(503) == 3 and summary.statuses.get(413) == 1
    assert server.app.ok_rows() == 10_000
    assert len(calls) == len(server.app.requests)  # one InvokeEndpoint per HTTP request: botocore retried none
    assert {c["ContentType"] for c in calls} == {"application/json"}


def test_a_throttled_call_is_retried_and_a_wrong_endpoint_is_not(aws: MotoServer, scripted_server: Start) -> None:
    server = scripted_server(Script())
    client = runtime(aws)
    calls = script_aws(
        client,
        "InvokeEndpoint",
        error("ThrottlingException", "Rate exceeded", 400),
        sagemaker_front(server.url),
    )
    assert invoke_all(SageMakerTransport(client, ENDPOINT), [1, 2, 3], concurrency=1, backoff_s=0.001) == [2, 4, 6]
    assert len(calls) == 2

    other = runtime(aws)
    refused = script_aws(
        other, "InvokeEndpoint", error("ValidationError", "Endpoint nope of account 123456789012 not found.")
    )
    with pytest.raises(ClientError, match="not found") as caught:
        invoke_all(SageMakerTransport(other, "nope"), list(range(10)), backoff_s=0.001)
    assert caught.value.status == 400
    assert len(refused) == 1


def test_a_container_time_out_splits_the_chunk(aws: MotoServer, scripted_server: Start) -> None:
    # SageMaker cuts a container that takes longer than its limit: ModelError, status 0, "timed out".
    # Requests of more than 8 rows time out here; the invoker halves them until they fit.
    server = scripted_server(Script())
    forward = sagemaker_front(server.url)
    timed_out = error(
        "ModelError",
        'Received server error (0) from primary with message "Your invocation timed out while waiting for a '
        'response from container primary."',
        424,
        OriginalStatusCode=0,
    )

    def slow_when_large(params: dict[str, Any]) -> Any:
        rows = httpx.Response(200, content=params["Body"]).json()["instances"]
        return timed_out if len(rows) > 8 else forward(params)

    client = runtime(aws)
    script_aws(client, "InvokeEndpoint", slow_when_large)
    transport = SageMakerTransport(client, ENDPOINT)
    invoker = ChunkedInvoker(transport, concurrency=2, backoff_s=0.001)
    results: list[int] = []
    summary = invoker.run(list(range(100)), on_results=lambda first, predictions: results.extend(predictions))
    assert results == [doubled(i) for i in range(100)]
    assert summary.splits >= 1 and summary.statuses.get(504, 0) >= 1
    assert max(r["rows"] for r in server.app.requests) <= 8
