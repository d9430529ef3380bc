"""SageMaker batch transform jobs (CreateTransformJob, DescribeTransformJob, StopTransformJob) and the S3
objects around them (a job's input uploaded, its output downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.cloud.errors import aws_call
from shipyard.cloud.sagemaker import describe_or_none
from shipyard.cloud.session import Aws
from shipyard.errors import UsageError

__all__ = ["TransformGateway"]


class TransformGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sagemaker")
        self.s3 = aws.client("s3")

    def create(self, request: dict[str, Any]) -> str:
        """CreateTransformJob with ``request`` as it is; the job's ARN."""
        with aws_call(f"create the transform job {request['TransformJobName']}", self.aws.region):
            return str(self.client.create_transform_job(**request)["TransformJobArn"])

    def describe(self, name: str) -> dict[str, Any] | None:
        return describe_or_none(
            f"transform job {name}", self.aws.region, lambda: self.client.describe_transform_job(TransformJobName=name)
        )

    def stop(self, name: str) -> None:
        with aws_call(f"stop the transform job {name}", self.aws.region):
            self.client.stop_transform_job(TransformJobName=name)

    def download(self, bucket: str, prefix: str, directory: Path) -> list[Path]:
        """Every object under ``s3://bucket/prefix`` into ``directory``, keys relative to the prefix kept.

        A key whose path leads outside ``directory`` (``prefix/../../x``) is a :class:`UsageError` naming it,
        raised before anything is written."""
        root = directory.resolve()
        planned: list[tuple[str, Path]] = []
        with aws_call(f"download s3://{bucket}/{prefix}", self.aws.region):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    # an object named by the URI itself keeps its own name; the others their path below it
                    relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                    if relative.endswith("/"):
                        continue
                    target = (root / relative).resolve()
                    if target == root or not target.is_relative_to(root):
                        raise UsageError(
                            f"s3://{bucket}/{key}: the key leads outside the folder it is downloaded to ({directory}); "
                            "nothing was downloaded. Rename the object, or give a prefix without it"
                        )
                    planned.append((key, target))
            written: list[Path] = []
            for key, target in planned:
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(target))
                written.append(target)
        return written

    def remove(self, bucket: str, keys: list[str]) -> None:
        """Delete these objects (exactly these keys; one that is not there is no error)."""
        with aws_call(f"delete {len(keys)} object(s) of s3://{bucket}", self.aws.region):
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
