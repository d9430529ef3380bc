"""A ``model.tar.gz`` nobody vouches for: every member is checked before a byte is written.

Python's own filter (``extractall(filter="data")``) is not trusted alone: before 3.11.13 a chain of links whose
resolved path exceeds PATH_MAX talks it past (CVE-2025-4517), because it asks the filesystem (``realpath``),
which gives up on long paths. Here the archive is checked as a namespace of its own, lexically, never asking
the filesystem, after its headers are read and before anything is written:

- names: not absolute, no ``..`` component (``./`` prefixes are fine); each name once (directories excepted);
  nothing lies under another member that is a link or a file, so nothing is ever written through a link;
- types: regular files, directories, symbolic and hard links; devices, FIFOs, sparse files and any other type
  are refused;
- symbolic links: not absolute, and the target, resolved within the archive (following its other links, at most
  :data:`MAX_LINKS` in all), stays inside the root; hard links name a regular file that comes earlier;
- sizes: at most ``max_members`` members and ``max_bytes`` bytes as the headers declare them
  (:class:`~shipyard.config.ArchiveLimits`), and the bytes must fit the destination's free space.

Then the members are written here, not by ``tarfile``: directories created one level at a time (never through a
link), files with ``O_EXCL | O_NOFOLLOW`` and the bytes counted again as they stream, modes 0644 (0755 when any
execute bit is set, and for directories) so an unprivileged user can read the result, and each path's
``realpath`` checked to lie inside the root once it is written. Every refusal is a :class:`BundleError` naming
the archive, the member and the reason.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from shipyard.config import ARCHIVE_ENV, ArchiveLimits
from shipyard.errors import BundleError

__all__ = ["MAX_LINKS", "Listing", "Member", "extract", "scan"]

MAX_LINKS = 8  # symbolic links followed to resolve one link's target, itself included (Linux allows 40)
_CHUNK = 1 << 20
# What a damaged or truncated archive raises while it is read (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)

Kind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # normalised: relative, "/"-separated, no "" or "." or ".." parts
    kind: Kind
    size: int  # the bytes of a regular file; 0 for the others
    mode: int  # what it is written with
    info: tarfile.TarInfo = field(repr=False, compare=False)
    target: str = ""  # symlink: the link as stored (relative); hard link: the normalised name of its file


@dataclass(frozen=True)
class Listing:
    """The checked members of an archive, in its order."""

    source: Path
    members: tuple[Member, ...]
    total_bytes: int
    _by_name: dict[str, Member] = field(init=False, repr=False, compare=False)
    _links: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.members})
        object.__setattr__(self, "_links", {m.name: m.target for m in self.members if m.kind == "symlink"})

    def file_at(self, name: str) -> Member | None:
        """The regular file a reader opening ``name`` gets once extracted (following the archive's links)."""
        try:
            parts = _Resolver(self, name).walk([], name)
        except BundleError:
            return None
        member = self._by_name.get("/".join(parts))
        if member is not None and member.kind == "hardlink":
            member = self._by_name.get(member.target)
        return member if member is not None and member.kind == "file" else None

    def link_target(self, name: str) -> str | None:
        """Where the symbolic link member ``name`` points (None: ``name`` is no symbolic link)."""
        return self._links.get(name)


# -- reading ------------------------------------------------------------------------------------------------------
@contextmanager
def _opened(source: Path) -> Iterator[tarfile.TarFile]:
    """The archive opened for reading; errors of a damaged archive become one BundleError (the body's own
    BundleErrors pass through)."""
    try:
        with tarfile.open(source) as tar:
            yield tar
    except BundleError:
        raise
    except _READ_ERRORS as exc:
        raise BundleError(f"{source} is not a readable tar archive: {exc}") from None


def scan(
    source: Path, names: Iterable[str], max_file_bytes: int, limits: ArchiveLimits | None = None
) -> tuple[Listing, dict[str, bytes]]:
    """The checked listing of ``source`` and the contents of those of ``names`` it holds (found as a reader of
    the extracted bundle would find them, through its links), each at most ``max_file_bytes``; no extraction.
    A file met under its own name is read as the headers stream by, so the archive is decompressed once."""
    names = tuple(names)
    with _opened(source) as tar:
        early: dict[str, bytes] = {}
        listing = _listing(tar, source, limits or ArchiveLimits.from_env(), (set(names), max_file_bytes, early))
        found: dict[str, bytes] = {}
        for name in names:
            member = listing.file_at(name)
            if member is None:
                continue
            if member.size > max_file_bytes:
                raise BundleError(
                    f"{source}: {_show(name)} is {_size(member.size)}, more than the {_size(max_file_bytes)} "
                    "such a file may be"
                )
            found[name] = early[member.name] if member.name in early else _read(tar, member)
        return listing, found


def extract(source: Path, root: Path, limits: ArchiveLimits | None = None) -> Listing:
    """Extract ``source`` into the directory ``root`` (which should be empty), every member checked first."""
    limits = limits or ArchiveLimits.from_env()
    with _opened(source) as tar:
        listing = _listing(tar, source, limits)
        _check_space(listing, root)
        writer = _Writer(tar, listing, root, limits)
        for member in listing.members:
            writer.write(member)
    os.chmod(root, 0o755)  # mkdtemp makes it 0700: the server's workers may run as another user
    return listing


# Files to read while the headers are listed: their names, the most bytes one may have, where they go.
_Capture = tuple[set[str], int, dict[str, bytes]]


def _listing(tar: tarfile.TarFile, source: Path, limits: ArchiveLimits, capture: _Capture | None = None) -> Listing:
    members: list[Member] = []
    total = headers = 0
    while (info := tar.next()) is not None:
        headers += 1  # "." entries too: tarfile keeps every header in memory
        if headers > limits.max_members:
            raise BundleError(
                f"{source} holds more than {limits.max_members:,} members (the limit; {ARCHIVE_ENV['max_members'][0]} "
                "raises it)"
            )
        member = _member(info, source)
        if member is None:  # "." or "./": the root itself
            continue
        total += member.size
        if total > limits.max_bytes:
            raise BundleError(
                f"{source} extracts to more than {_size(limits.max_bytes)} ({_show(member.name)} passes the limit; "
                f"{ARCHIVE_ENV['max_bytes'][0]} raises it)"
            )
        members.append(member)
        if capture is not None and member.kind == "file" and member.name in capture[0] and member.size <= capture[1]:
            capture[2][member.name] = _read(tar, member)  # in memory only, and a small file: before the checks
    listing = Listing(source, tuple(members), total)
    _check_namespace(listing)
    return listing


def _read(tar: tarfile.TarFile, member: Member) -> bytes:
    data = tar.extractfile(member.info)
    if data is None:  # pragma: no cover - a checked regular file always has a file object
        raise BundleError(f"{_show(member.name)} cannot be read")
    with data:
        return data.read(member.size)


# -- the checks ---------------------------------------------------------------------------------------------------
def _member(info: tarfile.TarInfo, source: Path) -> Member | None:
    """One header checked on its own: its name, its type, a link's target."""
    name = _normalise(info.name, source, "member")
    if name is None:
        if info.isdir():
            return None
        raise BundleError(f"{source}: the member {_show(info.name)} names the archive's root but is not a directory")
    why = _refused_type(info)
    if why:
        raise BundleError(f"{source}: {_show(name)} is {why}; a bundle holds only files, directories and links")
    if info.isreg():
        if info.size < 0:
            raise BundleError(f"{source}: {_show(name)} declares a negative size ({info.size})")
        return Member(name, "file", info.size, 0o755 if info.mode & 0o111 else 0o644, info)
    if info.isdir():
        return Member(name, "dir", 0, 0o755, info)
    if info.issym():
        if not info.linkname:
            raise BundleError(f"{source}: {_show(name)} is a symbolic link to nothing")
        if info.linkname.startswith("/"):
            raise BundleError(
                f"{source}: {_show(name)} is a symbolic link to the absolute path {_show(info.linkname)}; "
                "links in a bundle must be relative and stay inside it"
            )
        return Member(name, "symlink", 0, 0o777, info, info.linkname)
    if not info.linkname:
        raise BundleError(f"{source}: {_show(name)} is a hard link to nothing")
    target = _normalise(info.linkname, source, f"the hard link {_show(name)} to")
    if target is None:
        raise BundleError(f"{source}: {_show(name)} is a hard link to the archive's root")
    return Member(name, "hardlink", 0, 0o644, info, target)


def _normalise(raw: str, source: Path, what: str) -> str | None:
    """``raw`` as a relative "/"-separated name inside the root (None: the root itself); absolute names and any
    ``..`` component are refused (so nothing can normalise outside the root)."""
    if not raw:
        raise BundleError(f"{source}: a member has an empty name")
    if raw.startswith("/"):
        raise BundleError(f"{source}: {what} {_show(raw)} is an absolute path; members must be relative")
    parts = raw.split("/")
    if ".." in parts:
        raise BundleError(f"{source}: {what} {_show(raw)} has a '..' component, which could leave the bundle")
    kept = [part for part in parts if part not in ("", ".")]
    return "/".join(kept) if kept else None


def _refused_type(info: tarfile.TarInfo) -> str | None:
    if info.type == tarfile.GNUTYPE_SPARSE or getattr(info, "sparse", None) is not None:
        return "a sparse file"
    if info.ischr() or info.isblk():
        return "a device"
    if info.isfifo():
        return "a FIFO"
    if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        return f"a member of type {info.type.decode(errors='replace')!r}"
    return None


def _check_namespace(listing: Listing) -> None:
    """The checks that need every member (duplicates, members under a link or a file, where links lead), in the
    archive's order: the first member that fails is the one named."""
    not_dirs = {m.name: m for m in listing.members if m.kind != "dir"}
    seen: dict[str, Member] = {}
    for member in listing.members:
        earlier = seen.setdefault(member.name, member)
        if earlier is not member and not (earlier.kind == member.kind == "dir"):
            raise BundleError(f"{listing.source}: {_show(member.name)} appears twice in the archive")
        _check_parents(listing, member, not_dirs)
        if member.kind == "hardlink":
            target = seen.get(member.target)
            if target is None or target.kind != "file":
                raise BundleError(
                    f"{listing.source}: {_show(member.name)} is a hard link to {_show(member.target)}, which is not "
                    "a regular file earlier in the archive"
                )
        if member.kind == "symlink":
            _Resolver(listing, member.name).check(member)


def _check_parents(listing: Listing, member: Member, not_dirs: dict[str, Member]) -> None:
    parts = member.name.split("/")
    for depth in range(1, len(parts)):
        above = not_dirs.get("/".join(parts[:depth]))
        if above is not None:
            kind = {"symlink": "symbolic link", "hardlink": "hard link", "file": "file"}[above.kind]
            raise BundleError(
                f"{listing.source}: {_show(member.name)} lies under {_show(above.name)}, which is a {kind} in the "
                "archive (nothing is written through a link)"
            )


class _Resolver:
    """Resolves a path the way the kernel would once the archive is extracted, but within the archive's own
    names: each component that is a symbolic link member is replaced by where that link leads."""

    def __init__(self, listing: Listing, name: str) -> None:
        self.listing, self.name = listing, name
        self.followed = 0

    def check(self, member: Member) -> None:
        self.followed = 1  # the link itself
        self.walk(member.name.split("/")[:-1], member.target, origin=member)

    def walk(self, start: list[str], path: str, origin: Member | None = None) -> list[str]:
        if path.startswith("/"):
            raise self._refuse(origin, "leads to an absolute path")
        resolved = list(start)
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise self._refuse(origin, "leaves the bundle")
                resolved.pop()
                continue
            resolved.append(part)
            target = self.listing.link_target("/".join(resolved))
            if target is not None:
                self.followed += 1
                if self.followed > MAX_LINKS:
                    raise self._refuse(origin, f"goes through more than {MAX_LINKS} links")
                resolved = self.walk(resolved[:-1], target, origin)
        return resolved

    def _refuse(self, origin: Member | None, why: str) -> BundleError:
        shown = f"a symbolic link to {_show(origin.target)}" if origin else "a path"
        return BundleError(f"{self.listing.source}: {_show(self.name)} is {shown}, which {why}")


# -- writing ------------------------------------------------------------------------------------------------------
def _check_space(listing: Listing, root: Path) -> None:
    free = shutil.disk_usage(root).free
    if listing.total_bytes > free:
        raise BundleError(
            f"{listing.source} extracts to {_size(listing.total_bytes)}, but {root} has only {_size(free)} free"
        )


class _Writer:
    def __init__(self, tar: tarfile.TarFile, listing: Listing, root: Path, limits: ArchiveLimits) -> None:
        self.tar, self.listing, self.limits = tar, listing, limits
        self.root = root
        self.real_root = os.path.realpath(root)
        self.written = 0

    def write(self, member: Member) -> None:
        path = os.path.join(self.root, *member.name.split("/"))
        try:
            self._directories(member.name.split("/")[:-1])
            if member.kind == "dir":
                self._directories(member.name.split("/"))
            elif member.kind == "file":
                self._file(member, path)
            elif member.kind == "hardlink":
                source = os.path.join(self.root, *member.target.split("/"))
                os.link(source, path, follow_symlinks=False)
            else:
                os.symlink(member.target, path)
        except BundleError:
            raise
        except _READ_ERRORS as exc:  # the disk (full, a name too long) or the archive's data (truncated)
            raise BundleError(f"{self.listing.source}: {_show(member.name)} could not be extracted: {exc}") from None
        self._check_inside(member, path)

    def _directories(self, parts: list[str]) -> None:
        """Make each level of ``parts`` a real directory (0755), never following a link."""
        path = str(self.root)
        for part in parts:
            path = os.path.join(path, part)
            try:
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)  # whatever the umask
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise BundleError(f"{self.listing.source}: {_show(part)} is not a directory") from None

    def _file(self, member: Member, path: str) -> None:
        data = self.tar.extractfile(member.info)
        if data is None:  # pragma: no cover - a checked regular file always has a file object
            raise BundleError(f"{_show(member.name)} cannot be read")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with data, os.fdopen(fd, "wb") as out:
            self._copy(data, out, member)
            os.fchmod(out.fileno(), member.mode)

    def _copy(self, data: IO[bytes], out: IO[bytes], member: Member) -> None:
        """Stream the member's bytes, counting them against its header and the limit as they come."""
        copied = 0
        while chunk := data.read(_CHUNK):
            copied += len(chunk)
            self.written += len(chunk)
            if copied > member.size:
                raise BundleError(f"{self.listing.source}: {_show(member.name)} holds more bytes than its header says")
            if self.written > self.limits.max_bytes:
                raise BundleError(
                    f"{self.listing.source} extracts to more than {_size(self.limits.max_bytes)} (at "
                    f"{_show(member.name)}; {ARCHIVE_ENV['max_bytes'][0]} raises the limit)"
                )
            out.write(chunk)

    def _check_inside(self, member: Member, path: str) -> None:
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.real_root]) != self.real_root:
            raise BundleError(
                f"{self.listing.source}: {_show(member.name)} was written to {_show(real)}, outside {self.root}"
            )


# -- messages -----------------------------------------------------------------------------------------------------
def _show(name: str, limit: int = 120) -> str:
    """A member's name for a one-line message: control characters escaped, a long name cut in the middle."""
    shown = name if name.isprintable() else ascii(name)[1:-1]
    if len(shown) > limit:
        half = (limit - 1) // 2
        shown = f"{shown[:half]}…{shown[-half:]}"
    return shown


def _size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns
