"""S3: the bucket that holds ``model.tar.gz`` (and data capture), objects encrypted and tagged."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["CaptureStore", "S3Gateway", "default_bucket"]


def default_bucket(region: str, account: str) -> str:
    """The bucket the SageMaker SDK uses by default, so artifacts land where users already look."""
    return f"sagemaker-{region}-{account}"


class S3Gateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("s3")

    def bucket_exists(self, bucket: str) -> bool:
        with aws_call(f"look up the S3 bucket {bucket}", self.aws.region):
            try:
                self.client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if error_code(exc) in {"404", "NoSuchBucket", "NotFound"}:
                    return False
                raise
        return True

    def create_bucket(self, bucket: str) -> None:
        """A private bucket: public access blocked, default encryption on."""
        with aws_call(f"create the S3 bucket {bucket}", self.aws.region):
            args: dict[str, Any] = {"Bucket": bucket}
            if self.aws.region != "us-east-1":  # us-east-1 refuses an explicit location constraint
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.aws.region}
            try:
                self.client.create_bucket(**args)
            except ClientError as exc:
                if error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise
            self.client.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            self.client.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )

    def upload(self, path: Path, bucket: str, key: str, *, tags: dict[str, str], kms_key: str | None = None) -> str:
        """Upload ``path`` encrypted (SSE-S3, or SSE-KMS with ``kms_key``) and tagged; its ``s3://`` URI."""
        extra: dict[str, Any] = {
            "Tagging": "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())
        }
        if kms_key:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
        else:
            extra["ServerSideEncryption"] = "AES256"
        with aws_call(f"upload {path.name} to s3://{bucket}/{key}", self.aws.region):
            self.client.upload_file(str(path), bucket, key, ExtraArgs=extra)
        return f"s3://{bucket}/{key}"

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        with aws_call(f"look up s3://{bucket}/{key}", self.aws.region):
            try:
                return dict(self.client.head_object(Bucket=bucket, Key=key))
            except ClientError as exc:
                if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise

    def object_tags(self, bucket: str, key: str) -> dict[str, str]:
        with aws_call(f"read the tags of s3://{bucket}/{key}", self.aws.region):
            tags = self.client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {t["Key"]: t["Value"] for t in tags}

    def keys(self, bucket: str, prefix: str) -> list[str]:
        found: list[str] = []
        with aws_call(f"list s3://{bucket}/{prefix}", self.aws.region):
            try:
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    found.extend(str(item["Key"]) for item in page.get("Contents", []))
            except ClientError as exc:
                if error_code(exc) == "NoSuchBucket":
                    return []
                raise
        return found

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under ``prefix``; how many (0 when there were none, or no bucket)."""
        keys = self.keys(bucket, prefix)
        with aws_call(f"delete s3://{bucket}/{prefix}", self.aws.region):
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                chunk = [{"Key": key} for key in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
        return len(keys)


class CaptureStore:
    """The server's :class:`~shipyard.serving.capture.ObjectStore` for an ``s3://`` capture. The client is made
    on the first put, in the worker that writes (boto3 clients are not shared across ``fork``)."""

    def __init__(self, region: str | None = None) -> None:
        self.region = region
        self._gateway: S3Gateway | None = None

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        if self._gateway is None:
            # S3 needs no region (buckets are global; boto3's own default is us-east-1's endpoint, which
            # redirects): a capture with none configured writes as `boto3.client("s3")` would.
            self._gateway = S3Gateway(Aws(self.region or boto3.Session().region_name or "us-east-1"))
        gateway = self._gateway
        with aws_call(f"write the capture object s3://{bucket}/{key}", gateway.aws.region):
            gateway.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
