"""Put the endpoint's image into its ECR repository.

Normally: log in to ECR with a token from GetAuthorizationToken and push through the image engine. With
a registry override (a CNCF registry on 127.0.0.1 in the tests, where moto serves only the ECR *API*),
the image is pushed there instead and its manifest is recorded in ECR with PutImage, so everything that
reads ECR afterwards (DescribeImages, the Model's image URI) sees the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from shipyard.cloud.ecr import EcrGateway, Registry, Repository
from shipyard.errors import DeployError

__all__ = ["ImagePusher", "PushedImage", "publish"]

_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}


class ImagePusher(Protocol):
    """The part of the image engine a deploy needs: push a local image to a registry; its digest."""

    def push(self, image: str, destination: str, *, login: Registry | None, tls_verify: bool) -> str | None: ...


@dataclass(frozen=True)
class PushedImage:
    uri: str  # what the SageMaker Model runs: REPOSITORY_URI:TAG
    digest: str | None


def publish(
    pusher: ImagePusher,
    ecr: EcrGateway,
    *,
    image: str,
    repository: Repository,
    tag: str,
    registry_override: str | None = None,
) -> PushedImage:
    uri = f"{repository.uri}:{tag}"
    if ecr.has_image(repository.name, tag):  # immutable tags: a resumed deploy finds its image already there
        return PushedImage(uri=uri, digest=None)
    if not registry_override:
        digest = pusher.push(image, uri, login=ecr.login(), tls_verify=True)
        return PushedImage(uri=uri, digest=digest)
    destination = f"{registry_override}/{repository.name}:{tag}"
    pusher.push(image, destination, login=None, tls_verify=False)
    manifest, media_type = _fetch_manifest(registry_override, repository.name, tag)
    if media_type in _INDEX_TYPES:
        raise DeployError(
            f"{image} was pushed as a multi-platform index ({media_type}); SageMaker needs a single-platform "
            "linux/amd64 image manifest: rebuild it with `shipyard build`"
        )
    digest = ecr.put_manifest(repository.name, tag, manifest, media_type)
    return PushedImage(uri=uri, digest=digest)


def _fetch_manifest(registry: str, repository: str, tag: str) -> tuple[str, str]:
    url = f"http://{registry}/v2/{repository}/manifests/{tag}"
    try:
        response = httpx.get(url, headers={"Accept": _MANIFEST_TYPES}, timeout=30)
    except httpx.HTTPError as exc:
        raise DeployError(f"cannot read the pushed manifest from {url}: {exc}") from None
    if response.status_code != 200:
        raise DeployError(f"cannot read the pushed manifest from {url}: HTTP {response.status_code}")
    media_type = response.headers.get("content-type", "application/vnd.oci.image.manifest.v1+json")
    return response.text, media_type.split(";")[0].strip()
