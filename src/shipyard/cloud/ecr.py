"""ECR: the image repository (scan on push, immutable tags, a lifecycle policy) and its images."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["EcrGateway", "Registry", "Repository", "lifecycle_policy"]


@dataclass(frozen=True)
class Repository:
    name: str
    uri: str
    arn: str


@dataclass(frozen=True)
class Registry:
    """Where to log in to push: ``host`` with a user name and a password (an ECR token, valid 12 h)."""

    host: str
    username: str
    password: str

    def __repr__(self) -> str:  # never print the token
        return f"Registry(host={self.host!r}, username={self.username!r}, password=***)"


def lifecycle_policy(keep: int) -> dict[str, Any]:
    """Expire untagged images after a day and keep the newest ``keep`` tagged ones."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after 1 day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the newest {keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                "action": {"type": "expire"},
            },
        ]
    }


class EcrGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("ecr")

    def create_repository(self, name: str, *, tags: list[dict[str, str]], keep_images: int = 10) -> Repository:
        """Create (or adopt) ``name`` with scan on push, immutable tags, AES256 and the lifecycle policy."""
        with aws_call(f"create the ECR repository {name}", self.aws.region):
            try:
                repo = self.client.create_repository(
                    repositoryName=name,
                    imageScanningConfiguration={"scanOnPush": True},
                    imageTagMutability="IMMUTABLE",
                    encryptionConfiguration={"encryptionType": "AES256"},
                    tags=tags,
                )["repository"]
            except ClientError as exc:
                if error_code(exc) != "RepositoryAlreadyExistsException":
                    raise
                repo = self.client.describe_repositories(repositoryNames=[name])["repositories"][0]
            self.client.put_lifecycle_policy(
                repositoryName=name, lifecyclePolicyText=json.dumps(lifecycle_policy(keep_images))
            )
        return Repository(name=name, uri=str(repo["repositoryUri"]), arn=str(repo["repositoryArn"]))

    def describe(self, name: str) -> dict[str, Any] | None:
        with aws_call(f"describe the ECR repository {name}", self.aws.region):
            try:
                return dict(self.client.describe_repositories(repositoryNames=[name])["repositories"][0])
            except ClientError as exc:
                if error_code(exc) == "RepositoryNotFoundException":
                    return None
                raise

    def lifecycle(self, name: str) -> dict[str, Any]:
        with aws_call(f"read the lifecycle policy of {name}", self.aws.region):
            text = self.client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
        return dict(json.loads(text))

    def untag(self, arn: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {arn}", self.aws.region):
            self.client.untag_resource(resourceArn=arn, tagKeys=keys)

    def tags(self, arn: str) -> dict[str, str]:
        with aws_call(f"read the tags of {arn}", self.aws.region):
            tags = self.client.list_tags_for_resource(resourceArn=arn)["tags"]
        return {t["Key"]: t["Value"] for t in tags}

    def repositories(self, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_call("list the ECR repositories", self.aws.region):
            for page in self.client.get_paginator("describe_repositories").paginate():
                found.extend(r for r in page["repositories"] if str(r["repositoryName"]).startswith(prefix))
        return found

    def login(self) -> Registry:
        """The registry host and a push token (``docker login`` material; never logged)."""
        with aws_call("get an ECR login token", self.aws.region):
            data = self.client.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        host = str(data["proxyEndpoint"]).removeprefix("https://").removeprefix("http://")
        return Registry(host=host, username=user, password=password)

    def has_image(self, repository: str, tag: str) -> bool:
        with aws_call(f"look for {repository}:{tag}", self.aws.region):
            try:
                self.client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
            except ClientError as exc:
                if error_code(exc) in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                    return False
                raise
        return True

    def image_digest(self, repository: str, tag: str) -> str | None:
        """The digest of ``repository:tag`` (None when there is no such image)."""
        with aws_call(f"look up the digest of {repository}:{tag}", self.aws.region):
            try:
                details = self.client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
            except ClientError as exc:
                if error_code(exc) in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                    return None
                raise
        images = details.get("imageDetails") or []
        return str(images[0]["imageDigest"]) if images else None

    def put_manifest(self, repository: str, tag: str, manifest: str, media_type: str) -> str:
        """Record an image manifest under ``tag`` (what a registry push does); its digest."""
        with aws_call(f"record {repository}:{tag} in ECR", self.aws.region):
            try:
                image = self.client.put_image(
                    repositoryName=repository,
                    imageManifest=manifest,
                    imageManifestMediaType=media_type,
                    imageTag=tag,
                )["image"]
            except ClientError as exc:
                if error_code(exc) != "ImageAlreadyExistsException":
                    raise
                image = self.client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])[
                    "imageDetails"
                ][0]
                return str(image["imageDigest"])
        return str(image["imageId"]["imageDigest"])

    def images(self, repository: str) -> list[dict[str, Any]]:
        with aws_call(f"list the images of {repository}", self.aws.region):
            try:
                return list(self.client.describe_images(repositoryName=repository)["imageDetails"])
            except ClientError as exc:
                if error_code(exc) == "RepositoryNotFoundException":
                    return []
                raise

    def delete_repository(self, name: str) -> bool:
        """Delete the repository and its images; ``False`` when it was already gone."""
        with aws_call(f"delete the ECR repository {name}", self.aws.region):
            try:
                self.client.delete_repository(repositoryName=name, force=True)
            except ClientError as exc:
                if error_code(exc) == "RepositoryNotFoundException":
                    return False
                raise
        return True
