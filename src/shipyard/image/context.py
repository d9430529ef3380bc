"""The build context: a folder kept between builds whose files change only when their content does.

Podman 4.3's layer cache compares file timestamps as well as content, so a context written afresh each
time would rebuild every ``COPY``. Here every file and folder gets one fixed mtime and a fixed mode
(root-owned in the image, readable by everyone, writable by no one but root), and files are rewritten
only when their bytes differ: the cache then depends on content alone, and a change to the handler code
rebuilds the code layer and nothing else.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.bundle.archive import bundle_files

# bundle_files: which files make up a bundle is the bundle's rule (bundle/archive.py); the image takes it from there.
__all__ = ["FIXED_MTIME", "BuildContext", "bundle_files", "bundle_hash"]

FIXED_MTIME = 315532800  # 1980-01-01, the earliest time a zip (wheel) can hold


def bundle_hash(root: Path) -> str:
    """sha256 over the bundle's file names and contents: the image label that says which bundle is inside."""
    digest = hashlib.sha256()
    for relative in bundle_files(root):
        digest.update(relative.as_posix().encode() + b"\0")
        with (root / relative).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


class BuildContext:
    """A context folder under the cache, locked while one build uses it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[BuildContext]:
        path.mkdir(parents=True, exist_ok=True)
        with (path.parent / f".{path.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two builds of one bundle at once take turns
            yield cls(path)

    def write(self, relative: str, data: bytes, mode: int = 0o644) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and target.read_bytes() == data):
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        _settle(target, mode)

    def sync_tree(self, relative: str, source: Path, files: list[Path]) -> None:
        """Make ``relative`` hold exactly ``files`` (paths relative to ``source``), copying only what differs."""
        root = self.path / relative
        root.mkdir(parents=True, exist_ok=True)
        wanted = {f.as_posix() for f in files}
        for existing in sorted(root.rglob("*"), reverse=True):
            name = existing.relative_to(root).as_posix()
            if existing.is_dir() and not existing.is_symlink():
                if not any(w.startswith(name + "/") for w in wanted):
                    shutil.rmtree(existing)
            elif name not in wanted:
                existing.unlink()
        for file in files:
            src, dst = source / file, root / file
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not _same(src, dst):
                tmp = dst.with_name(f".{dst.name}.tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
            _settle(dst, 0o755 if os.access(src, os.X_OK) else 0o644)
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            _settle(folder, 0o755)
        _settle(root, 0o755)

    def remove(self, relative: str) -> None:
        target = self.path / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def settle(self) -> None:
        _settle(self.path, 0o755)


def _same(src: Path, dst: Path) -> bool:
    if not dst.is_file() or src.stat().st_size != dst.stat().st_size:
        return False
    with src.open("rb") as a, dst.open("rb") as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True


def _settle(path: Path, mode: int) -> None:
    if (path.stat().st_mode & 0o7777) != mode:
        path.chmod(mode)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
