"""``model.tar.gz``: the archive SageMaker downloads from S3 and extracts into ``/opt/ml/model``.

Files sit at the archive's root (``shipyard.toml``, ``model/…``, ``code/…``), which is what SageMaker
expects. Archives are reproducible: sorted entries, fixed mtimes and owners, gzip without a timestamp.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.bundle import Bundle
from shipyard.errors import BundleError

__all__ = ["is_archive", "make_readable", "open_any", "pack", "readable_mode"]

_EPOCH = 0


def readable_mode(path: Path) -> int:
    """The mode a bundle's files have wherever Shipyard writes them: directories and executables 0755, other
    files 0644.

    A bundle is read by another user: a container's workers run unprivileged (``SHIPYARD_RUN_AS``) and see a
    mounted bundle with its modes as they are on the host. The rule is the archive's (``pack``), so a bundle
    saved, packed, or extracted for the local target keeps the same modes, execute bits included.
    """
    return 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644


def make_readable(root: Path) -> None:
    """Give ``root`` and everything under it :func:`readable_mode`, whatever wrote them (symbolic links are
    left alone: a chmod would change their target). Libraries write through private temporary files
    (``mkdtemp`` is 0700; transformers writes ``model.safetensors`` 0600), and a user's umask may be 077."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        wanted = readable_mode(path)
        if path.stat().st_mode & 0o7777 != wanted:
            path.chmod(wanted)


def pack(bundle_dir: str | Path, output: str | Path) -> Path:
    """Write ``bundle_dir`` as a reproducible ``model.tar.gz`` at ``output`` (atomically)."""
    bundle = Bundle.open(bundle_dir)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # `shipyard pack .` run inside the bundle writes model.tar.gz into it: never pack the archive into itself.
    files = sorted(p for p in bundle.path.rglob("*") if _keep(p, bundle.path) and p.resolve() != output.resolve())
    handle, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=".pack-", suffix=".tar.gz")
    try:
        with (
            os.fdopen(handle, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=_EPOCH) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in files:
                info = tar.gettarinfo(str(path), arcname=path.relative_to(bundle.path).as_posix())
                info.mtime, info.uid, info.gid, info.uname, info.gname = _EPOCH, 0, 0, "", ""
                info.mode = readable_mode(path)
                if path.is_file():
                    with path.open("rb") as data:
                        tar.addfile(info, data)
                else:
                    tar.addfile(info)
        os.replace(tmp_name, output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return output


def _keep(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(part == "__pycache__" or part.startswith(".") for part in parts) and (
        path.is_file() or path.is_dir()
    )


def is_archive(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar")))


@contextmanager
def open_any(path: str | Path, program: str = "inference.py") -> Iterator[Bundle]:
    """A bundle from a directory or a ``model.tar.gz`` (extracted safely into a temporary directory)."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if not is_archive(path):
        yield Bundle.open(path, program)
        return
    with tempfile.TemporaryDirectory(prefix="shipyard-bundle-") as tmp:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
            raise BundleError(f"{path} is not a readable tar archive: {exc}") from None
        yield Bundle.open(tmp, program)


def read_member(path: str | Path, name: str) -> bytes | None:
    """One file of an archive, without extracting the rest."""
    with tarfile.open(path) as tar:
        try:
            member = tar.extractfile(name)
        except KeyError:
            return None
        return member.read() if member else None
