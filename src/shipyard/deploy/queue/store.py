"""Where the queue's inputs, answers and errors live: ``file://`` paths (the local deployment's directory bucket),
or ``s3://`` objects when the deployment was given S3 locations and ``AWS_ENDPOINT_URL`` points boto3 at a stand-in
such as moto (boto3 is imported only then: the local target works without the ``aws`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from shipyard.errors import InvokeError

if TYPE_CHECKING:
    from shipyard.cloud.s3 import S3Gateway

__all__ = ["file_uri", "join", "path_of", "read_location", "write_location"]


def file_uri(path: Path) -> str:
    return "file://" + quote(str(path.resolve()))


def path_of(location: str) -> Path:
    if not location.startswith("file://"):
        raise InvokeError(f"{location}: not a file:// location")
    return Path(unquote(location.removeprefix("file://")))


def join(prefix: str, name: str) -> str:
    """``prefix/name`` for a ``file://`` or ``s3://`` prefix."""
    return prefix.rstrip("/") + "/" + quote(name) if prefix.startswith("file://") else prefix.rstrip("/") + "/" + name


def _s3() -> S3Gateway:
    from shipyard.cloud.s3 import S3Gateway
    from shipyard.cloud.session import Aws

    return S3Gateway(Aws())


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_location(location: str) -> tuple[bytes, str] | None:
    """The body at ``location`` and its Content-Type ("" when a file), or None when there is nothing there."""
    if location.startswith("s3://"):
        found: tuple[bytes, str] | None = _s3().get_bytes(*_split(location))
        return found
    path = path_of(location)
    return (path.read_bytes(), "") if path.is_file() else None


def write_location(location: str, body: bytes, content_type: str) -> None:
    """``body`` at ``location``, whole (a file is written aside, then renamed into place)."""
    if location.startswith("s3://"):
        _s3().put_bytes(body, *_split(location), content_type=content_type, tags={})
        return
    path = path_of(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_bytes(body)
    part.replace(path)
