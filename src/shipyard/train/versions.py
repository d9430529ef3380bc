"""Which code and which data trained: the code version and each local channel's version.

Code: the git commit of the source folder's repository (None outside one), whether the folder has uncommitted
changes, a sha256 of them (``git diff HEAD --binary`` plus the untracked files' names and contents, limited to the
source folder), and the sha256 of the source folder's files as they are sent (the bundle's rule of which files to
take: :func:`shipyard.image.context.bundle_hash`, the training image's label).

Data: ``sha256:HEX`` over a local folder's (or file's) relative names and contents. Each file's digest is cached
in ``CACHE_DIR/channel-digests.json`` by (absolute path, size, mtime_ns), so a second run over an unchanged 1 GB
folder reads its directory entries and no byte of its files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from shipyard.codecs.media import content_type_for
from shipyard.experiments.record import Channel, CodeVersion
from shipyard.image.context import bundle_hash
from shipyard.settings import Settings

__all__ = ["channel_version", "channel_versions", "code_version"]

_CACHE = "channel-digests.json"
_CHUNK = 1 << 20


def _git(source: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        done = subprocess.run(["git", *args], cwd=source, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done if done.returncode == 0 else None


def code_version(source: Path) -> CodeVersion:
    """The :class:`CodeVersion` of the source folder ``source``."""
    source_sha = bundle_hash(source)
    head = _git(source, "rev-parse", "HEAD")
    if head is None:
        return CodeVersion(commit=None, dirty=False, diff_sha256=None, source_sha256=source_sha)
    diff = _git(source, "diff", "HEAD", "--binary", "--", ".")
    untracked = _git(source, "ls-files", "--others", "--exclude-standard", "-z", "--", ".")
    digest = hashlib.sha256(diff.stdout if diff else b"")
    names = [n for n in (untracked.stdout if untracked else b"").split(b"\0") if n]
    for name in sorted(names):
        digest.update(b"\0untracked\0" + name + b"\0")
        with contextlib.suppress(OSError):
            digest.update((source / os.fsdecode(name)).read_bytes())
    dirty = bool(diff and diff.stdout) or bool(names)
    return CodeVersion(
        commit=head.stdout.decode().strip(),
        dirty=dirty,
        diff_sha256=digest.hexdigest() if dirty else None,
        source_sha256=source_sha,
    )


def channel_versions(channels: Mapping[str, str], settings: Settings) -> list[Channel]:
    """A :class:`Channel` per channel; an ``s3://`` one has no version yet (the SageMaker target gives it one)."""
    return [
        Channel(name, uri, "") if uri.startswith("s3://") else channel_version(name, Path(uri), settings)
        for name, uri in channels.items()
    ]


def channel_version(name: str, path: Path, settings: Settings) -> Channel:
    """The version of a local channel: sha256 over its relative file names and their contents."""
    path = path.expanduser().resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    cache_path = settings.cache_dir / _CACHE
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with (cache_path.parent / f".{_CACHE}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = _read_cache(cache_path)
        digest, size = hashlib.sha256(), 0
        for file in files:
            stat = file.stat()
            key = f"{file}|{stat.st_size}|{stat.st_mtime_ns}"
            if key not in cache:
                cache[key] = _file_digest(file)
            relative = file.name if file == path else file.relative_to(path).as_posix()
            digest.update(relative.encode() + b"\0" + cache[key].encode() + b"\0")
            size += stat.st_size
        _write_cache(cache_path, cache)
    kind = content_type_for(files[0], default="") if len(files) == 1 else _common_type(files)
    return Channel(name, str(path), f"sha256:{digest.hexdigest()}", size, len(files), kind or None)


def _common_type(files: list[Path]) -> str:
    kinds = {content_type_for(f, default="") for f in files}
    return kinds.pop() if len(kinds) == 1 else ""


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, path)
