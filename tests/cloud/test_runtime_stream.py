"""InvokeEndpointWithResponseStream through boto3, read as PayloadPart bytes as they arrive.

Scripted, not moto: moto 5.2.5 does not implement InvokeEndpointWithResponseStream (404 for
/endpoints/NAME/invocations-response-stream). tests/infra/event_stream.py is a real HTTP server answering with
AWS's event-stream framing, which botocore's own decoder reads in the code under test; the requests are
checked against the API's shapes (tests/infra/aws_shapes.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from infra.aws_shapes import check_params
from infra.event_stream import EventStreamServer
from shipyard.client.sagemaker import SageMakerTransport
from shipyard.cloud.runtime import invoke_endpoint_with_response_stream
from shipyard.errors import InvokeError, UsageError

OPERATION = "InvokeEndpointWithResponseStream"


@pytest.fixture
def scripted() -> Iterator[EventStreamServer]:
    server = EventStreamServer().start()
    yield server
    server.stop()


def _client(server: EventStreamServer, calls: list[dict[str, Any]]) -> Any:
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    client.meta.events.register(
        f"provide-client-params.sagemaker-runtime.{OPERATION}", lambda params, **_: calls.append(dict(params))
    )
    return client


def test_parts_arrive_as_they_are_sent_with_every_header(scripted: EventStreamServer) -> None:
    scripted.script = [b'{"i": 0}\n', ("sleep", 0.8), b'{"i": 1}\n', b'{"i": 2}\n']
    calls: list[dict[str, Any]] = []
    client = _client(scripted, calls)
    started = time.perf_counter()
    parts = invoke_endpoint_with_response_stream(
        client,
        "fleet",
        b'{"n": 3}',
        content_type="application/json",
        accept="application/jsonlines",
        custom_attributes="trace=7",
        target_variant="blue",
        inference_id="req-1",
    )
    arrivals = [(time.perf_counter() - started, part) for part in parts]
    assert [part for _, part in arrivals] == [b'{"i": 0}\n', b'{"i": 1}\n', b'{"i": 2}\n']
    assert arrivals[0][0] < 0.6 < 0.8 <= arrivals[1][0]  # the first before the server's pause, not after
    (call,) = calls
    check_params("sagemaker-runtime", OPERATION, call)
    assert call == {
        "EndpointName": "fleet",
        "Body": b'{"n": 3}',
        "ContentType": "application/json",
        "Accept": "application/jsonlines",
        "CustomAttributes": "trace=7",
        "TargetVariant": "blue",
        "InferenceId": "req-1",
    }
    (request,) = scripted.requests
    assert request["path"] == "/endpoints/fleet/invocations-response-stream"
    headers = {key.lower(): value for key, value in request["headers"].items()}
    assert headers["x-amzn-sagemaker-accept"] == "application/jsonlines"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=7"
    assert headers["x-amzn-sagemaker-target-variant"] == "blue"
    assert headers["x-amzn-sagemaker-inference-id"] == "req-1"
    assert request["body"] == b'{"n": 3}'


def test_optional_members_are_left_out(scripted: EventStreamServer) -> None:
    scripted.script = [b"x"]
    calls: list[dict[str, Any]] = []
    parts = invoke_endpoint_with_response_stream(_client(scripted, calls), "e", b"{}", content_type="application/json")
    assert list(parts) == [b"x"]
    assert calls == [{"EndpointName": "e", "Body": b"{}", "ContentType": "application/json"}]


@pytest.mark.parametrize("kind", ["ModelStreamError", "InternalStreamFailure"])
def test_an_error_event_raises_after_the_parts_before_it(scripted: EventStreamServer, kind: str) -> None:
    scripted.script = [b"a", ("exception", kind, {"Message": "the model broke", "ErrorCode": "StreamBroken"})]
    parts = invoke_endpoint_with_response_stream(_client(scripted, []), "e", b"{}", content_type="application/json")
    got = []
    with pytest.raises(InvokeError, match=f"{kind}.*the model broke"):
        for part in parts:
            got.append(part)
    assert got == [b"a"]


def test_an_error_before_the_stream_raises_with_the_container_status(scripted: EventStreamServer) -> None:
    scripted.status = 424
    scripted.error = {
        "__type": "ModelError",
        "Message": "Received client error (400) from primary",
        "OriginalStatusCode": 400,
        "OriginalMessage": "bad input",
    }
    parts = invoke_endpoint_with_response_stream(_client(scripted, []), "e", b"{}", content_type="application/json")
    with pytest.raises(InvokeError, match="ModelError: bad input") as raised:
        list(parts)
    assert raised.value.status == 400


def test_the_transport_stream_times_the_parts(scripted: EventStreamServer) -> None:
    scripted.script = [("sleep", 0.3), b'{"i": 0}\n', ("sleep", 0.3), b'{"i": 1}\n']
    stream = SageMakerTransport(_client(scripted, []), "e", target_variant="green").stream(
        b"{}", content_type="application/json", accept=None, timeout_s=10
    )
    assert list(stream) == [b'{"i": 0}\n', b'{"i": 1}\n']
    assert stream.first_byte_s is not None and stream.total_s is not None
    assert 0.25 < stream.first_byte_s < stream.total_s - 0.25
    assert (stream.chunks, stream.bytes) == (2, 18)
    headers = {key.lower(): value for key, value in scripted.requests[0]["headers"].items()}
    assert headers["x-amzn-sagemaker-target-variant"] == "green"


def test_an_error_record_split_over_payload_parts_raises(scripted: EventStreamServer) -> None:
    """The container's record as SageMaker may pass it on: cut across PayloadParts, after a part that did not
    end its line (then the ModelStreamError event for the connection the container broke)."""
    scripted.script = [
        b'{"i": 0}',
        b'\n{"ModelStr',
        b'eamError": {"ErrorCode": "ModelError", "Mess',
        b'age": "chunk 1 failed"}}\n',
        ("exception", "ModelStreamError", {"Message": "the container closed the stream", "ErrorCode": "Broken"}),
    ]
    stream = SageMakerTransport(_client(scripted, []), "e").stream(
        b"{}", content_type="application/json", accept=None, timeout_s=10
    )
    got = []
    with pytest.raises(InvokeError, match="ModelStreamError ModelError: chunk 1 failed"):
        for chunk in stream:
            got.append(chunk)
    assert b"".join(got) == b'{"i": 0}\n'


def test_a_target_model_cannot_be_streamed(scripted: EventStreamServer) -> None:
    """InvokeEndpointWithResponseStream has no TargetModel: refused, not dropped (the whole endpoint answering)."""
    assert "TargetModel" not in _members(OPERATION)
    transport = SageMakerTransport(_client(scripted, []), "e", target_model="a.tar.gz")
    with pytest.raises(UsageError, match=r"a\.tar\.gz.*cannot be streamed.*no TargetModel"):
        transport.stream(b"{}", content_type="application/json", accept=None, timeout_s=10)
    assert scripted.requests == []


def _members(operation: str) -> set[str]:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime").operation_model(operation)
    return set(model.input_shape.members)
