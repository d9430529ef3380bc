"""sagemaker-runtime's ``InvokeEndpoint``: the one place its boto3 client is called and botocore's errors read.

:func:`invoke_endpoint` never raises for an answer the caller may act on (a model's error, a throttle, a
time-out, a cut connection): it returns a :class:`RuntimeAnswer` saying which it was. Refused credentials or
permissions, and botocore's own failures (no region, ...), raise the same :class:`~shipyard.errors.CloudError`
as every other command. The status mapping of an error answer is the client's (``shipyard.client.sagemaker``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from shipyard.cloud.errors import DENIED, REFUSED_CREDENTIALS, error_code, translate
from shipyard.errors import InvokeError

__all__ = [
    "AsyncAccepted",
    "RuntimeAnswer",
    "invoke_endpoint",
    "invoke_endpoint_async",
    "invoke_endpoint_with_response_stream",
]

STREAM_ERRORS = ("ModelStreamError", "InternalStreamFailure")  # the error events of a ResponseStream

Outcome = Literal["ok", "error", "timed-out", "unreachable"]


@dataclass(frozen=True, slots=True)
class RuntimeAnswer:
    outcome: Outcome
    body: bytes = b""
    content_type: str = ""
    seconds: float = 0.0
    error: dict[str, Any] = field(default_factory=dict)  # the parsed error response, for outcome "error"
    message: str = ""  # what went wrong, for "timed-out" and "unreachable"
    variant: str | None = None  # InvokedProductionVariant


def invoke_endpoint(
    client: Any,
    endpoint: str,
    body: bytes,
    *,
    content_type: str,
    accept: str | None = None,
    target_variant: str | None = None,
    target_model: str | None = None,
) -> RuntimeAnswer:
    """One ``InvokeEndpoint`` through ``client`` (from :meth:`shipyard.cloud.session.Aws.runtime_client`)."""
    args: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": content_type}
    if accept:
        args["Accept"] = accept
    if target_variant:
        args["TargetVariant"] = target_variant
    if target_model:  # a multi-model endpoint's model: its path under the endpoint's S3 prefix
        args["TargetModel"] = target_model
    started = time.perf_counter()
    try:
        answer = client.invoke_endpoint(**args)
        data = answer["Body"].read()
    except ClientError as exc:
        if error_code(exc) in REFUSED_CREDENTIALS | DENIED:  # not worth a retry; say what to do
            raise translate(exc, f"invoke the endpoint {endpoint}") from exc
        return RuntimeAnswer("error", seconds=time.perf_counter() - started, error=dict(exc.response))
    except ReadTimeoutError:
        waited = f"no answer from {endpoint} within the read time-out"
        return RuntimeAnswer("timed-out", seconds=time.perf_counter() - started, message=waited)
    except (HTTPClientError, BotoConnectionError) as exc:  # refused, reset, or cut off mid-answer
        lost = f"cannot reach SageMaker: {exc}"
        return RuntimeAnswer("unreachable", seconds=time.perf_counter() - started, message=lost)
    except BotoCoreError as exc:  # no credentials, no region, ...: the same error the other commands give
        raise translate(exc, f"invoke the endpoint {endpoint}") from exc
    seconds = time.perf_counter() - started
    variant = answer.get("InvokedProductionVariant")
    return RuntimeAnswer("ok", data, str(answer.get("ContentType", "")), seconds, variant=variant)


def invoke_endpoint_with_response_stream(
    client: Any,
    endpoint: str,
    body: bytes,
    *,
    content_type: str,
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_variant: str | None = None,
    inference_id: str | None = None,
) -> Iterator[bytes]:
    """``InvokeEndpointWithResponseStream``: the bytes of each ``PayloadPart`` as it arrives.

    An error answer before the stream (``ModelError``, ``ValidationError``, a throttle), a ``ModelStreamError`` or
    ``InternalStreamFailure`` event in it, and a connection cut mid-stream raise :class:`InvokeError` (the parts
    before it were yielded already); refused credentials raise the same CloudError as every other command."""
    args: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": content_type}
    for key, value in (
        ("Accept", accept),
        ("CustomAttributes", custom_attributes),
        ("TargetVariant", target_variant),
        ("InferenceId", inference_id),
    ):
        if value:
            args[key] = value
    try:
        answer = client.invoke_endpoint_with_response_stream(**args)
        for event in answer["Body"]:
            part = event.get("PayloadPart")
            if part is not None:
                yield part.get("Bytes", b"")
                continue
            for kind in STREAM_ERRORS:  # a botocore that hands error events over as events, not exceptions
                if kind in event:
                    raise InvokeError(_stream_error(kind, event[kind]))
    except ClientError as exc:  # botocore raises an error event (EventStreamError) as a ClientError too
        code = error_code(exc)
        if code in REFUSED_CREDENTIALS | DENIED:
            raise translate(exc, f"invoke the endpoint {endpoint}") from exc
        error = dict(exc.response.get("Error", {}))
        if code in STREAM_ERRORS:
            raise InvokeError(_stream_error(code, error)) from None
        original = exc.response.get("OriginalMessage")
        status = exc.response.get("OriginalStatusCode") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode"
        )
        message = original or error.get("Message") or code
        raise InvokeError(f"{code}: {message}", status=status if isinstance(status, int) else None) from None
    except ReadTimeoutError:
        raise InvokeError(f"no answer from {endpoint} within the read time-out") from None
    except (HTTPClientError, BotoConnectionError) as exc:
        raise InvokeError(f"the stream from {endpoint} broke: {exc}") from None
    except BotoCoreError as exc:
        raise translate(exc, f"invoke the endpoint {endpoint}") from exc


def _stream_error(kind: str, error: dict[str, Any]) -> str:
    code = error.get("ErrorCode") or error.get("Code")
    message = error.get("Message") or error.get("message") or ""
    return f"{kind}{f' {code}' if code else ''}: {message}".rstrip(": ")


@dataclass(frozen=True, slots=True)
class AsyncAccepted:
    """InvokeEndpointAsync's answer: where the answer (or the error) will be written, under which id."""

    inference_id: str
    output_location: str
    failure_location: str | None


def invoke_endpoint_async(
    client: Any,
    endpoint: str,
    input_location: str,
    *,
    content_type: str,
    accept: str | None = None,
    inference_id: str | None = None,
    invocation_timeout_s: int | None = None,
) -> AsyncAccepted:
    """One ``InvokeEndpointAsync`` of the object at ``input_location`` (``s3://``); any error raises
    :class:`~shipyard.errors.CloudError` (the request is queued or it is not: there is no answer to act on)."""
    args: dict[str, Any] = {"EndpointName": endpoint, "InputLocation": input_location, "ContentType": content_type}
    if accept:
        args["Accept"] = accept
    if inference_id:
        args["InferenceId"] = inference_id
    if invocation_timeout_s is not None:
        args["InvocationTimeoutSeconds"] = invocation_timeout_s
    try:
        answer = client.invoke_endpoint_async(**args)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"queue a request on the endpoint {endpoint}") from exc
    return AsyncAccepted(
        inference_id=str(answer.get("InferenceId") or inference_id or ""),
        output_location=str(answer["OutputLocation"]),
        failure_location=answer.get("FailureLocation"),
    )
