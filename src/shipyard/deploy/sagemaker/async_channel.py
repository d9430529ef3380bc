"""``invoke --async`` on a sagemaker deployment: the input uploaded under ``s3://BUCKET/async/NAME/input/``,
``InvokeEndpointAsync`` on it, the outcome read from its ``OutputLocation`` (or ``FailureLocation``)."""

from __future__ import annotations

import time

from shipyard.cloud.runtime import invoke_endpoint_async
from shipyard.cloud.s3 import S3Gateway, parse_s3_uri
from shipyard.cloud.session import Aws, deployment_tags
from shipyard.deploy.asynchronous import DONE, FAILED, RUNNING, AsyncInvocation, AsyncOutcome, suffix_for
from shipyard.deploy.sagemaker.asynchronous import input_prefix
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError

__all__ = ["SageMakerAsyncChannel"]


class SageMakerAsyncChannel:
    def __init__(self, aws: Aws, record: Deployment) -> None:
        options = record.options
        if options is None or options.asynchronous is None:
            raise DeployError(
                f"{record.name} is a real-time endpoint: invoke it without --async, or deploy one with --async"
            )
        if not record.details.bucket:
            raise DeployError(f"{record.name} has no S3 bucket in its record; `shipyard status --reconcile`")
        self.aws, self.record, self.bucket = aws, record, record.details.bucket
        self.s3 = S3Gateway(aws)
        self.timeout_s = options.asynchronous.invocation_timeout_s

    def submit(
        self, body: bytes, *, content_type: str, accept: str | None, inference_id: str, timeout_s: int | None
    ) -> AsyncInvocation:
        bucket, prefix = parse_s3_uri(input_prefix(self.bucket, self.record.name))
        location = self.s3.put_bytes(
            body,
            bucket,
            f"{prefix}{inference_id}{suffix_for(content_type)}",
            content_type=content_type,
            tags=deployment_tags(self.record.name),
        )
        client = self.aws.runtime_client(read_timeout_s=60, connections=1)
        accepted = invoke_endpoint_async(
            client,
            self.record.name,
            location,
            content_type=content_type,
            accept=accept,
            inference_id=inference_id,
            invocation_timeout_s=timeout_s if timeout_s is not None else self.timeout_s,
        )
        return AsyncInvocation(
            endpoint=self.record.name,
            inference_id=accepted.inference_id,
            input_location=location,
            output_location=accepted.output_location,
            failure_location=accepted.failure_location,
            submitted_at=time.time(),
        )

    def fetch(self, invocation: AsyncInvocation) -> AsyncOutcome:
        found = self.s3.get_bytes(*parse_s3_uri(invocation.output_location))
        if found is not None:
            return AsyncOutcome(DONE, found[0], found[1])
        if invocation.failure_location:
            failed = self.s3.get_bytes(*parse_s3_uri(invocation.failure_location))
            if failed is not None:
                return AsyncOutcome(FAILED, failed[0], failed[1], failed[0].decode(errors="replace").strip())
        return AsyncOutcome(RUNNING)
