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

__all__ = ["RuntimeAnswer", "invoke_endpoint"]

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
