"""``invoke --async`` on a local deployment: the input written to the deployment's directory "bucket"
(``BUCKET/input/ID.json``), queued on its queue process, the outcome read from ``BUCKET/output/ID.out`` or
``BUCKET/failure/ID-error.out``. Locations are ``file://`` URIs of absolute paths."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote, unquote

import httpx

from shipyard.deploy.asynchronous import DONE, FAILED, RUNNING, AsyncInvocation, AsyncOutcome, suffix_for
from shipyard.errors import DeployError, InvokeError

__all__ = ["LocalAsyncChannel", "bucket_dir", "file_uri", "path_of"]


def bucket_dir(staging_root: Path, name: str) -> Path:
    """The directory that stands in for the deployment's S3 prefix: ``input/``, ``output/``, ``failure/``,
    ``notifications/``."""
    return staging_root / f"async-{name}"


def file_uri(path: Path) -> str:
    return "file://" + quote(str(path.resolve()))


def path_of(location: str) -> Path:
    if not location.startswith("file://"):
        raise InvokeError(f"{location}: the local target's locations are file:// paths")
    return Path(unquote(location.removeprefix("file://")))


class LocalAsyncChannel:
    def __init__(self, name: str, bucket: Path, queue_url: str) -> None:
        self.name, self.bucket, self.queue_url = name, bucket, queue_url

    def submit(
        self, body: bytes, *, content_type: str, accept: str | None, inference_id: str, timeout_s: int | None
    ) -> AsyncInvocation:
        path = self.bucket / "input" / f"{inference_id}{suffix_for(content_type)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        part.write_bytes(body)
        part.replace(path)
        headers = {
            "X-Amzn-SageMaker-InputLocation": file_uri(path),
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
            input_location=file_uri(path),
            output_location=answer.headers["x-amzn-sagemaker-outputlocation"],
            failure_location=answer.headers.get("x-amzn-sagemaker-failurelocation"),
            submitted_at=time.time(),
        )

    def fetch(self, invocation: AsyncInvocation) -> AsyncOutcome:
        output = path_of(invocation.output_location)
        if output.is_file():
            body = output.read_bytes()
            return AsyncOutcome(DONE, body, _sniff(body))
        if invocation.failure_location:
            failure = path_of(invocation.failure_location)
            if failure.is_file():
                body = failure.read_bytes()
                return AsyncOutcome(FAILED, body, "text/plain", body.decode(errors="replace").strip())
        return AsyncOutcome(RUNNING)


def _sniff(body: bytes) -> str:
    """A file keeps no Content-Type: JSON when it reads as JSON's start, else bytes."""
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "application/octet-stream"
