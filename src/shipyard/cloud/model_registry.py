"""SageMaker Model Registry: model package groups and versioned model packages, and the S3 objects they name.

Every call goes through :func:`~shipyard.cloud.errors.aws_call`, so a refusal is a :class:`CloudError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.sagemaker import describe_or_none
from shipyard.cloud.session import Aws

__all__ = ["ModelRegistryGateway", "split_s3"]


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class ModelRegistryGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sagemaker")

    def describe_group(self, name: str) -> dict[str, Any] | None:
        return describe_or_none(
            f"model package group {name}",
            self.aws.region,
            lambda: self.client.describe_model_package_group(ModelPackageGroupName=name),
        )

    def create_group(self, name: str, *, description: str, tags: list[dict[str, str]]) -> str:
        """The group's ARN; made only when it does not exist (AWS refuses a second one; moto keeps both)."""
        found = self.describe_group(name)
        if found is not None:
            return str(found["ModelPackageGroupArn"])
        with aws_call(f"create the model package group {name}", self.aws.region):
            answer = self.client.create_model_package_group(
                ModelPackageGroupName=name, ModelPackageGroupDescription=description, Tags=tags
            )
        return str(answer["ModelPackageGroupArn"])

    def list_groups(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_call("list the model package groups", self.aws.region):
            for page in self.client.get_paginator("list_model_package_groups").paginate():
                found.extend(page["ModelPackageGroupSummaryList"])
        return found

    def create_package(self, request: dict[str, Any]) -> str:
        """``CreateModelPackage`` with ``request`` as it is; the new version's ARN."""
        with aws_call(f"create a model package in {request.get('ModelPackageGroupName')}", self.aws.region):
            return str(self.client.create_model_package(**request)["ModelPackageArn"])

    def list_packages(self, group: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_call(f"list the model packages of {group}", self.aws.region):
            pages = self.client.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=group, ModelPackageType="Versioned"
            )
            for page in pages:
                found.extend(page["ModelPackageSummaryList"])
        return found

    def describe_package(self, arn: str) -> dict[str, Any] | None:
        answer = describe_or_none(
            f"model package {arn}", self.aws.region, lambda: self.client.describe_model_package(ModelPackageName=arn)
        )
        if answer is not None:
            answer.pop("ResponseMetadata", None)
        return answer

    def update_package(self, arn: str, **changes: Any) -> None:
        """``UpdateModelPackage``: ModelApprovalStatus, ApprovalDescription, CustomerMetadataProperties..."""
        with aws_call(f"update the model package {arn}", self.aws.region):
            self.client.update_model_package(ModelPackageArn=arn, **changes)

    def get_object(self, uri: str) -> bytes | None:
        """The object's bytes; None when it is not there."""
        bucket, key = split_s3(uri)
        with aws_call(f"read {uri}", self.aws.region):
            try:
                return bytes(self.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            except ClientError as exc:
                if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                    return None
                raise

    def download(self, uri: str, path: Path) -> Path:
        bucket, key = split_s3(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with aws_call(f"download {uri}", self.aws.region):
            self.aws.client("s3").download_file(bucket, key, str(path))
        return path
