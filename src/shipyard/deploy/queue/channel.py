"""``invoke --async`` on a local deployment: the input written to the deployment's directory "bucket"
(``BUCKET/input/ID.json``), queued on its queue process, the outcome read from ``BUCKET/output/ID.out`` or
``BUCKET/failure/ID-error.out``. Locations are ``file://`` URIs of absolute paths; with S3 locations given at
deploy (and ``AWS_ENDPOINT_URL`` set), ``s3://`` ones."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from shipyard.deploy.asynchronous import DONE, FAILED, RUNNING, AsyncInvocation, AsyncOutcome, suffix_for
from shipyard.deploy.queue.store import file_uri, join, path_of, read_location, write_location
from shipyard.errors import DeployError, InvokeError

__all__ = ["LocalAsyncChannel", "bucket_dir", "file_uri", "path_of"]


def bucket_dir(staging_root: Path, name: str) -> Path:
    """The directory that stands in for the deployment's S3 prefix: ``input/``, ``output/``, ``failure/``,
    ``notifications/``."""
    return staging_root / f"async-{name}"


class LocalAsyncChannel:
    def __init__(self, name: str, bucket: Path, queue_url: str, *, input_prefix: str | None = None) -> None:
        """``input_prefix``: where inputs go (``s3://`` with S3 locations), else ``bucket/input``."""
        self.name, self.bucket, self.queue_url = name, bucket, queue_url
        self.input_prefix = input_prefix or file_uri(bucket / "input")

    def submit(
        self, body: bytes, *, content_type: str, accept: str | None, inference_id: str, timeout_s: int | None
    ) -> AsyncInvocation:
        location = join(self.input_prefix, f"{inference_id}{suffix_for(content_type)}")
        write_location(location, body, content_type)
        headers = {
            "X-Amzn-SageMaker-InputLocation": location,
            "X-Amzn-SageMaker-Content-Type": content_type,
            "X-Amzn-SageMaker-Inference-Id": inference_id,
        }
        if accept:
            headers["X-Amzn-SageMaker-Accept"] = accept
        if timeout_s is not None:
            headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] = str(timeout_s)
        try:
            answer = httpx.post(
                f"{self.queue_url}/endpoints/{self.name}/async-invocations", headers=headers, timeout=30
            )
        except httpx.HTTPError as exc:
            raise DeployError(
                f"the queue of {self.name} ({self.queue_url}) does not answer: {exc}; `shipyard status {self.name}`"
            ) from exc
        if answer.status_code != 202:
            raise InvokeError(
                f"the queue refused the request ({answer.status_code}): {answer.text}", answer.status_code
            )
        return AsyncInvocation(
            endpoint=self.name,
            inference_id=str(answer.json()["InferenceId"]),
            input_location=location,
            output_location=answer.headers["x-amzn-sagemaker-outputlocation"],
            failure_location=answer.headers.get("x-amzn-sagemaker-failurelocation"),
            submitted_at=time.time(),
        )

    def fetch(self, invocation: AsyncInvocation) -> AsyncOutcome:
        found = read_location(invocation.output_location)
        if found is not None:
            body, kind = found
            return AsyncOutcome(DONE, body, kind or _sniff(body))
        failed = read_location(invocation.failure_location) if invocation.failure_location else None
        if failed is not None:
            return AsyncOutcome(FAILED, failed[0], "text/plain", failed[0].decode(errors="replace").strip())
        return AsyncOutcome(RUNNING)


def _sniff(body: bytes) -> str:
    """A file keeps no Content-Type: JSON when it reads as JSON's start, else bytes."""
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "application/octet-stream"
