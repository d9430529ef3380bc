"""S3: the bucket that holds ``model.tar.gz`` (and data capture), objects encrypted and tagged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = [
    "PART_BYTES",
    "CaptureStore",
    "PrefixVersion",
    "S3Gateway",
    "SyncResult",
    "default_bucket",
    "local_etag",
    "parse_s3_uri",
]

PART_BYTES = 8 * 1024 * 1024
"""Every upload splits into parts of this size above it (boto3's default, pinned so :func:`local_etag` can
predict the ETag S3 gives the object)."""
_TRANSFER = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://BUCKET/KEY/PREFIX`` → ``("BUCKET", "KEY/PREFIX")``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def local_etag(path: Path) -> str:
    """The ETag S3 gives ``path`` uploaded by :meth:`S3Gateway.upload` (SSE-S3): its MD5, or for a multipart
    upload the MD5 of the parts' MD5s with ``-PARTS``."""
    parts: list[bytes] = []
    with path.open("rb") as handle:
        while chunk := handle.read(PART_BYTES):
            parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    if path.stat().st_size < PART_BYTES:  # s3transfer sends one PutObject below the threshold
        return parts[0].hex() if parts else hashlib.md5(b"", usedforsecurity=False).hexdigest()
    return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


@dataclass(frozen=True)
class PrefixVersion:
    """The objects under an S3 prefix, as one version: ``etag:`` + SHA-256 over each key (relative to the
    prefix, sorted) and its ETag, with their total size and count."""

    version: str
    size: int
    files: int


@dataclass(frozen=True)
class SyncResult:
    uri: str  # s3://BUCKET/PREFIX (a folder) or s3://BUCKET/KEY (a file)
    uploaded: int  # files sent
    skipped: int  # files already there with the same size and ETag
    bytes_sent: int


def _local_files(source: Path) -> Iterator[tuple[str, Path]]:
    """(relative key, path) of a file, or of every file under a folder, sorted."""
    if source.is_file():
        yield source.name, source
        return
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        yield path.relative_to(source).as_posix(), path


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
            self.client.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=_TRANSFER)
        return f"s3://{bucket}/{key}"

    def objects(self, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
        """Every object under ``prefix``: key → (size, ETag without its quotes); empty without the bucket."""
        found: dict[str, tuple[int, str]] = {}
        with aws_call(f"list s3://{bucket}/{prefix}", self.aws.region):
            try:
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        found[str(item["Key"])] = (int(item["Size"]), str(item["ETag"]).strip('"'))
            except ClientError as exc:
                if error_code(exc) == "NoSuchBucket":
                    return {}
                raise
        return found

    def prefix_version(self, uri: str) -> PrefixVersion:
        """The version of the data under ``uri`` (see :class:`PrefixVersion`): what a training channel read."""
        bucket, prefix = parse_s3_uri(uri)
        objects = self.objects(bucket, prefix)
        digest = hashlib.sha256()
        for key in sorted(objects):
            digest.update(f"{key.removeprefix(prefix)}\0{objects[key][1]}\n".encode())
        return PrefixVersion(
            version=f"etag:{digest.hexdigest()}",
            size=sum(size for size, _ in objects.values()),
            files=len(objects),
        )

    def sync_up(self, source: Path, uri: str, *, tags: Mapping[str, str]) -> SyncResult:
        """Upload a file or a folder's files under ``uri`` (a prefix; a file keeps its name below it), skipping
        each one already there with the same size and ETag."""
        bucket, prefix = parse_s3_uri(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        there = self.objects(bucket, prefix)
        uploaded = skipped = sent = 0
        for relative, path in _local_files(source):
            key = prefix + relative
            size = path.stat().st_size
            if there.get(key) == (size, local_etag(path)):
                skipped += 1
                continue
            self.upload(path, bucket, key, tags=dict(tags))
            uploaded, sent = uploaded + 1, sent + size
        return SyncResult(uri=f"s3://{bucket}/{prefix}", uploaded=uploaded, skipped=skipped, bytes_sent=sent)

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        with aws_call(f"look up s3://{bucket}/{key}", self.aws.region):
            try:
                return dict(self.client.head_object(Bucket=bucket, Key=key))
            except ClientError as exc:
                if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise

    def put_bytes(self, body: bytes, bucket: str, key: str, *, content_type: str, tags: Mapping[str, str]) -> str:
        """One object from memory, encrypted (SSE-S3) and tagged; its ``s3://`` URI."""
        extra = {"Tagging": "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())}
        with aws_call(f"upload to s3://{bucket}/{key}", self.aws.region):
            self.client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, ServerSideEncryption="AES256",
                **(extra if tags else {}),
            )  # fmt: skip
        return f"s3://{bucket}/{key}"

    def get_bytes(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """An object's body and Content-Type, or None when there is no such object (or bucket)."""
        with aws_call(f"read s3://{bucket}/{key}", self.aws.region):
            try:
                answer = self.client.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
                    return None
                raise
            return answer["Body"].read(), str(answer.get("ContentType", ""))

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

    def untag_prefix(self, bucket: str, prefix: str, keys: list[str]) -> int:
        """Remove the tags ``keys`` from every object under ``prefix`` (the others stay); how many objects."""
        objects = self.keys(bucket, prefix)
        for key in objects:
            kept = [{"Key": k, "Value": v} for k, v in self.object_tags(bucket, key).items() if k not in keys]
            with aws_call(f"remove the tags {', '.join(keys)} from s3://{bucket}/{key}", self.aws.region):
                if kept:
                    self.client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": kept})
                else:
                    self.client.delete_object_tagging(Bucket=bucket, Key=key)
        return len(objects)

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
