"""The chunking client's way to a SageMaker endpoint: ``InvokeEndpoint``, its answers mapped to HTTP statuses.

SageMaker puts its own front between the caller and the container, and answers through it:

* the container's own error comes back as ``ModelError`` carrying ``OriginalStatusCode`` and
  ``OriginalMessage``: a 413 or a 503 from the server is still a 413 or a 503 here, so the chunking client
  splits or retries exactly as it does over plain HTTP;
* a container that does not answer within SageMaker's 60 s is a ``ModelError`` with no status (or 0) and
  "timed out" in its message: 504, which splits the chunk;
* the service's own refusals: ``ThrottlingException`` and ``ModelNotReadyException`` (a serverless
  endpoint still starting) are 429, ``ServiceUnavailable`` 503, ``InternalFailure`` and
  ``InternalDependencyException`` 500, all retried; ``ValidationError`` is 400 (a wrong endpoint name is
  not worth retrying); a body over the front's limit is a bare 413 with no error code, kept as 413;
* refused credentials or permissions raise the same error, with the same advice, as every other command;
* a read time-out is the client's time-out (the chunk is split), and a connection that fails or drops
  mid-answer is "unreachable" (retried), as over plain HTTP.

The boto3 client should come from :meth:`shipyard.cloud.session.Aws.runtime_client`, which turns botocore's
own retries off: the chunking client retries with its own backoff and budget. The call itself and botocore's
errors live in :mod:`shipyard.cloud.runtime`; this module maps its answers to statuses.
"""

from __future__ import annotations

from typing import Any

from shipyard.client.streaming import ChunkStream
from shipyard.client.transport import TIMED_OUT, UNREACHABLE, Reply
from shipyard.errors import UsageError

__all__ = ["SageMakerTransport", "status_of"]

_SERVICE_STATUS = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 500,
    "ValidationError": 400,
}


def status_of(response: dict[str, Any]) -> tuple[int, str]:
    """The HTTP status and message that a parsed ``InvokeEndpoint`` error response stands for."""
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message") or response.get("Message") or code)
    if code == "ModelError":
        original = response.get("OriginalStatusCode")
        text = str(response.get("OriginalMessage") or message)
        if isinstance(original, int) and 400 <= original < 600:
            return original, text
        if "timed out" in (message + " " + text).lower():
            return 504, text
        return 424, text  # the container failed without a usable status: what the runtime API answers
    if code in _SERVICE_STATUS:
        return _SERVICE_STATUS[code], message
    http = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (http if isinstance(http, int) and http >= 400 else 500), f"{code}: {message}" if code else message


class SageMakerTransport:
    """``InvokeEndpoint`` on one endpoint (safe to share between threads, as boto3 clients are)."""

    def __init__(
        self, client: Any, endpoint: str, *, target_variant: str | None = None, target_model: str | None = None
    ) -> None:
        self._client = client
        self.endpoint = endpoint
        self.target_variant = target_variant
        self.target_model = target_model  # a multi-model endpoint's model (InvokeEndpoint TargetModel)

    def post(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> Reply:
        """One invocation. ``timeout_s`` is the client's read time-out, fixed when the client was made."""
        from shipyard.cloud.runtime import invoke_endpoint  # boto3 only when a SageMaker endpoint is invoked

        answer = invoke_endpoint(
            self._client,
            self.endpoint,
            body,
            content_type=content_type,
            accept=accept,
            target_variant=self.target_variant,
            target_model=self.target_model,
        )
        if answer.outcome == "ok":
            return Reply(200, answer.body, answer.content_type, None, answer.seconds)
        if answer.outcome == "error":
            status, message = status_of(answer.error)
            return Reply(status, message.encode(), seconds=answer.seconds)
        lost = TIMED_OUT if answer.outcome == "timed-out" else UNREACHABLE
        return Reply(lost, answer.message.encode(), seconds=answer.seconds)

    def stream(self, body: bytes, *, content_type: str, accept: str | None, timeout_s: float) -> ChunkStream:
        """``InvokeEndpointWithResponseStream``: the PayloadParts as they arrive (``timeout_s`` is fixed when the
        client was made, as for :meth:`post`)."""
        from shipyard.cloud.runtime import invoke_endpoint_with_response_stream

        if self.target_model:  # not dropped quietly: the whole endpoint's answer is not this model's
            raise UsageError(
                f"{self.endpoint}: a multi-model endpoint's model ({self.target_model}) cannot be streamed: "
                "InvokeEndpointWithResponseStream has no TargetModel"
            )
        parts = invoke_endpoint_with_response_stream(
            self._client,
            self.endpoint,
            body,
            content_type=content_type,
            accept=accept,
            target_variant=self.target_variant,
        )
        return ChunkStream(parts)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
