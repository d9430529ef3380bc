"""What a deploy needs from the image layer: an image for a source (built when it is a bundle), pushed.

The image layer (:mod:`shipyard.image`) owns building and engines; this module is the narrow seam the
targets use, so they stay testable and the image code stays in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.bundle.archive import is_archive
from shipyard.deploy.base import Reporter

__all__ = ["ImageService", "RegistryLogin", "ResolvedImage", "is_bundle_source"]


def is_bundle_source(source: str) -> bool:
    """A bundle directory or a ``model.tar.gz``; anything else is taken as an image reference."""
    path = Path(source)
    return path.is_dir() or is_archive(path)


@dataclass(frozen=True)
class ResolvedImage:
    image: str  # a local image reference the engine can run or push
    bundle: Path | None  # the bundle it was built for (None: the source was an image)
    built: bool


class RegistryLogin(Protocol):
    """Credentials to push with (:class:`shipyard.cloud.ecr.Registry` is one: an ECR token).

    A protocol rather than that class, so the ``local`` target's import chain never reaches
    :mod:`shipyard.cloud` (boto3 is the ``aws`` extra; the base install has none).
    """

    @property
    def host(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


class ImageService(Protocol):
    def resolve(
        self,
        source: str,
        *,
        name: str,
        bake_model: bool,
        image: str | None = None,
        base: str | None = None,
        reporter: Reporter,
        with_aws: bool = False,
    ) -> ResolvedImage:
        """The image for ``source``: ``image`` when given, else built from a bundle (the model inside when
        ``bake_model``; boto3 added when ``with_aws``, for SHIPYARD_SECRETS); an image reference as ``source``
        is used as it is."""
        ...

    def push(self, image: str, destination: str, *, login: RegistryLogin | None, tls_verify: bool) -> str | None:
        """Push a local image (single-platform manifest); its digest when known."""
        ...
