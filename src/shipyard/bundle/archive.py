"""``model.tar.gz``: the archive SageMaker downloads from S3 and extracts into ``/opt/ml/model``.

Files sit at the archive's root (``shipyard.toml``, ``model/…``, ``code/…``), which is what SageMaker
expects. Archives are reproducible: sorted entries, fixed mtimes and owners, gzip without a timestamp.

A symbolic link in the bundle is packed as a relative link when it leads inside the bundle (what SageMaker's
extraction, and :func:`open_any`, accept) and refused when it leads outside: an archive holds what it says.
Archives are read as untrusted (``bundle/untrusted.py``): :func:`read_bundle` (``shipyard inspect``) reads the
few files it needs straight from the stream, :func:`open_any` and :func:`extract_archive` extract only after
every member is checked.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

from shipyard.bundle import HANDLER_FLAVOR, Bundle, parse_requirements
from shipyard.bundle.manifest import MANIFEST, Manifest
from shipyard.bundle.untrusted import extract, scan
from shipyard.config import ArchiveLimits
from shipyard.errors import BundleError

__all__ = [
    "ArchivedBundle",
    "bundle_files",
    "extract_archive",
    "holds",
    "is_archive",
    "link_target",
    "make_readable",
    "open_any",
    "pack",
    "read_bundle",
    "readable_mode",
]

_EPOCH = 0
# What read_bundle reads into memory from one member (a manifest, a script, requirements).
MAX_READ_BYTES = 16 * 1024 * 1024


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
    """Write ``bundle_dir`` as a reproducible ``model.tar.gz`` at ``output`` (atomically).

    A symbolic link that leads inside the bundle is stored as a relative link; one that leads outside is a
    BundleError (see :func:`link_target`)."""
    bundle = Bundle.open(bundle_dir)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # `shipyard pack .` run inside the bundle writes model.tar.gz into it: never pack the archive into itself.
    files = sorted(p for p in bundle.path.rglob("*") if _keep(p, bundle.path) and p.resolve() != output.resolve())
    links = {path: link_target(path, bundle.path) for path in files if path.is_symlink()}
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
                if path in links:
                    info.linkname = os.path.relpath(links[path], path.parent.relative_to(bundle.path))
                if info.isreg():
                    with path.open("rb") as data:
                        tar.addfile(info, data)
                else:
                    tar.addfile(info)
        os.replace(tmp_name, output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return output


def link_target(link: Path, root: Path) -> Path:
    """Where the symbolic link ``link`` of the bundle ``root`` leads, relative to ``root``: the rule ``pack``
    and the image's build context share. A link that leads outside the bundle, to a file ``pack`` leaves out
    (dotfiles, ``__pycache__``) or to a directory holding the link itself is a BundleError naming it."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(link))
    shown = link.relative_to(root).as_posix()
    if os.path.commonpath([real, real_root]) != str(real_root):
        raise BundleError(
            f"{root}: {shown} is a symbolic link to {real}, outside the bundle; an archive must hold what it "
            "names (copy the file into the bundle, or link to a file inside it)"
        )
    target = real.relative_to(real_root)
    if not holds(target):
        raise BundleError(f"{root}: {shown} is a symbolic link to {target.as_posix()}, which pack leaves out")
    if real.is_dir() and os.path.commonpath([real, Path(os.path.realpath(link.parent))]) == str(real):
        raise BundleError(f"{root}: {shown} is a symbolic link to {target.as_posix() or '.'}, which holds it (a loop)")
    return target


def holds(relative: PurePath) -> bool:
    """Whether a bundle holds the path ``relative`` (to its root): the one rule of which files make up a bundle,
    for ``pack``, a link's target and the image's build context alike. Caches and dotfiles are left out."""
    return not any(part == "__pycache__" or part.startswith(".") for part in relative.parts)


def _keep(path: Path, root: Path) -> bool:
    return holds(path.relative_to(root)) and (path.is_file() or path.is_dir())


def bundle_files(root: Path) -> list[Path]:
    """The bundle's files, sorted, relative to ``root``: what SageMaker would extract from ``pack``'s archive.

    Symbolic links are taken as ``pack`` takes them (:func:`link_target`): one that leads outside the bundle is a
    BundleError; a file a link leads to is listed under the link's name (a copy holds it), and so are the files of
    a directory it leads to; a dangling link is left out."""
    return sorted(_files(root, root, Path(), frozenset({os.path.realpath(root)})))


def _files(root: Path, directory: Path, prefix: Path, within: frozenset[str]) -> Iterator[Path]:
    for path in directory.rglob("*"):
        relative = prefix / path.relative_to(directory)
        if not holds(relative):
            continue
        if path.is_symlink() and path.exists():
            link_target(path, root)
            real = os.path.realpath(path)
            if path.is_dir():
                if real in within:  # links that lead into each other
                    raise BundleError(f"{root}: {relative.as_posix()} is a symbolic link in a loop of links")
                yield from _files(root, path, relative, within | {real})
                continue
        if path.is_file():
            yield relative


def is_archive(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar")))


@contextmanager
def open_any(path: str | Path, program: str = "inference.py", limits: ArchiveLimits | None = None) -> Iterator[Bundle]:
    """A bundle from a directory or a ``model.tar.gz`` (checked, then extracted into a temporary directory; see
    ``bundle/untrusted.py``)."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if not is_archive(path):
        yield Bundle.open(path, program)
        return
    with tempfile.TemporaryDirectory(prefix="shipyard-bundle-") as tmp:
        extract(path, Path(tmp), limits)
        yield Bundle.open(tmp, program)


def extract_archive(archive: str | Path, target: str | Path, limits: ArchiveLimits | None = None) -> None:
    """Extract ``archive`` into the (empty) directory ``target``, every member checked first."""
    extract(Path(archive), Path(target), limits)


@dataclass(frozen=True)
class ArchivedBundle:
    """A ``model.tar.gz`` read without extracting it: what ``shipyard inspect`` shows of a bundle."""

    source: Path
    manifest: Manifest
    program: str
    files: int
    size: int
    requirements_txt: bytes | None
    handler: bytes | None

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    def requirements(self) -> list[str]:
        return parse_requirements(self.requirements_txt) if self.requirements_txt is not None else []

    def size_bytes(self) -> int:
        return self.size

    def file_count(self) -> int:
        return self.files

    def handler_source(self) -> tuple[str, bytes] | None:
        return (f"{self.source}:code/{self.program}", self.handler) if self.handler is not None else None


def read_bundle(path: str | Path, program: str = "inference.py", limits: ArchiveLimits | None = None) -> ArchivedBundle:
    """The bundle in the archive ``path``, from its headers and three small files (the manifest, the requirements,
    the handler script), with every member checked as for extraction; nothing is written to disk."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    requirements, script = "code/requirements.txt", f"code/{program}"
    listing, found = scan(path, (MANIFEST, requirements, script), MAX_READ_BYTES, limits)
    name = _stem(path)
    if MANIFEST in found:
        manifest = Manifest.parse(found[MANIFEST], source=f"{path}:{MANIFEST}", default_name=name)
    elif script in found:
        manifest = Manifest(name=name, flavor=HANDLER_FLAVOR, batchable=False)
    else:
        raise BundleError(
            f"{path} is not a model bundle: it has neither {MANIFEST} (written by shipyard.save) "
            f"nor code/{program} (a SageMaker handler)"
        )
    # What a reader of the extracted bundle counts: regular files, hard links, and links that lead to a file.
    reached = [file for member in listing.members if (file := listing.file_at(member.name)) is not None]
    return ArchivedBundle(
        source=path,
        manifest=manifest,
        program=program,
        files=len(reached),
        size=sum(file.size for file in reached),
        requirements_txt=found.get(requirements),
        handler=found.get(script),
    )


def _stem(path: Path) -> str:
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return path.name
