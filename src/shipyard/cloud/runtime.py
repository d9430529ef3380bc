"""sagemaker-runtime's ``InvokeEndpoint``: the one place its boto3 client is called and botocore's errors read.

:func:`invoke_endpoint` never raises for an answer the caller may act on (a model's error, a throttle, a
time-out, a cut connection): it returns a :class:`RuntimeAnswer` saying which it was. Refused credentials or
permissions, and botocore's own failures (no region, ...), raise the same :class:`~shipyard.errors.CloudError`
as every other command. The status mapping of an error answer is the client's (``shipyard.client.sagemaker``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from shipyard.cloud.errors import DENIED, REFUSED_CREDENTIALS, error_code, translate

__all__ = ["AsyncAccepted", "RuntimeAnswer", "invoke_endpoint", "invoke_endpoint_async"]

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
) -> RuntimeAnswer:
    """One ``InvokeEndpoint`` through ``client`` (from :meth:`shipyard.cloud.session.Aws.runtime_client`)."""
    args: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": content_type}
    if accept:
        args["Accept"] = accept
    if target_variant:
        args["TargetVariant"] = target_variant
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
