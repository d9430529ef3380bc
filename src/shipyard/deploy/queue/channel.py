"""``invoke --async`` on a local deployment: the input written to the deployment's directory "bucket"
(``BUCKET/input/ID.json``), queued on its queue process, the outcome read from ``BUCKET/output/ID.out`` or
``BUCKET/failure/ID-error.out``. Locations are ``file://`` URIs of absolute paths; with S3 locations given at
deploy (and ``AWS_ENDPOINT_URL`` set), ``s3://`` ones."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from shipyard.deploy.asynchronous import (
    DONE,
    FAILED,
    RUNNING,
    SUFFIXES,
    AsyncInvocation,
    AsyncOutcome,
    check_inference_id,
    suffix_for,
)
from shipyard.deploy.queue.store import file_uri, join, path_of, read_location, write_location
from shipyard.errors import DeployError, InvokeError

__all__ = ["LocalAsyncChannel", "bucket_dir", "file_uri", "path_of"]


def bucket_dir(staging_root: Path, name: str) -> Path:
    """The directory that stands in for the deployment's S3 prefix: ``input/``, ``output/``, ``failure/``,
    ``notifications/``."""
    return staging_root / f"async-{name}"


class LocalAsyncChannel:
    def __init__(
        self,
        name: str,
        bucket: Path,
        queue_url: str,
        *,
        input_prefix: str | None = None,
        timeout_s: int | None = None,
    ) -> None:
        """``input_prefix``: where inputs go (``s3://`` with S3 locations), else ``bucket/input``; ``timeout_s``:
        the InvocationTimeoutSeconds a request gets when it gives none (the deployment's ``--invocation-timeout``,
        as the SageMaker target sends it)."""
        self.name, self.bucket, self.queue_url = name, bucket, queue_url
        self.input_prefix = input_prefix or file_uri(bucket / "input")
        self.timeout_s = timeout_s

    def submit(
        self, body: bytes, *, content_type: str, accept: str | None, inference_id: str, timeout_s: int | None
    ) -> AsyncInvocation:
        check_inference_id(inference_id)
        if self.input_prefix.startswith("file://"):  # an id used before: its input is not overwritten
            taken = [s for s in SUFFIXES if path_of(join(self.input_prefix, f"{inference_id}{s}")).exists()]
            if taken:
                raise InvokeError(
                    f"inference id {inference_id!r} is taken: {self.name} has a request with it already "
                    f"({path_of(join(self.input_prefix, inference_id + taken[0]))}); give each request its own id"
                )
        location = join(self.input_prefix, f"{inference_id}{suffix_for(content_type)}")
        write_location(location, body, content_type)
        timeout_s = timeout_s if timeout_s is not None else self.timeout_s
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
            self._withdraw(location)
            raise DeployError(
                f"the queue of {self.name} ({self.queue_url}) does not answer: {exc}; `shipyard status {self.name}`"
            ) from exc
        if answer.status_code != 202:
            self._withdraw(location)
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

    @staticmethod
    def _withdraw(location: str) -> None:
        """The input of a request the queue did not take, removed (so its id can be given again)."""
        if location.startswith("file://"):
            path_of(location).unlink(missing_ok=True)

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
