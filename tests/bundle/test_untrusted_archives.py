"""Crafted model.tar.gz files against the real readers (open_any, read_bundle, read_member, extract_archive): each
is refused with a BundleError naming the member and why, before anything is written outside the root."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

import shipyard
from infra.archives import MANIFEST_TOML, entry, extraction_root_length, manifest, path_max_escape, write
from shipyard import config
from shipyard.bundle import Bundle
from shipyard.bundle import archive as archives
from shipyard.bundle.archive import open_any, pack
from shipyard.bundle.manifest import MANIFEST
from shipyard.errors import BundleError, ShipyardError
from shipyard.image.context import bundle_files

# The functions before this file existed (open_any, read_member, pack) are imported by name, the newer ones used
# through their module, so that the tests run, and fail, against the code before the hardening as well.
SYM, LNK = tarfile.SYMTYPE, tarfile.LNKTYPE
MAX_LINKS = 8  # shipyard.bundle.untrusted.MAX_LINKS (test_the_link_cap_is_small)


def read_member(archive: Path, name: str) -> bytes | None:
    """One file of ``archive`` as a reader of the extracted bundle finds it (None: no such file), through the public
    reader (``open_any``: every member checked, then extracted into a temporary directory)."""
    with open_any(archive) as bundle:
        path = bundle.path / name
        return path.read_bytes() if path.is_file() else None


@pytest.fixture
def tmpdir_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where open_any makes its temporary directory: a directory of this test's (so its name's length is known)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """The directory the crafted archives aim at, holding ``flag`` ("original")."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "flag").write_text("original")
    return target


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["flag"]
    assert (outside / "flag").read_text() == "original"


def test_the_path_max_link_chain_is_refused_before_anything_is_written(
    tmp_path: Path, tmpdir_root: Path, outside: Path
) -> None:
    """CVE-2025-4517: Python 3.11.7's filter="data" lets this archive write outside the extraction directory."""
    evil = path_max_escape(tmp_path / "evil.tar.gz", root_length=extraction_root_length(tmpdir_root), target=outside)
    with pytest.raises(BundleError, match=r"lies under a, which is a symbolic link"), open_any(evil):
        pass
    _untouched(outside)
    assert list(tmpdir_root.iterdir()) == []  # the temporary directory is gone too
    with pytest.raises(BundleError, match="symbolic link"):
        archives.read_bundle(evil)
    _untouched(outside)


def _evil(tmp_path: Path, *entries: tuple[str, bytes | None, bytes, str]) -> Path:
    members = [manifest()] + [entry(name, data, kind=kind, linkname=link) for name, data, kind, link in entries]
    return write(tmp_path / "evil.tar.gz", members)


REFUSED: dict[str, tuple[list[tuple[str, bytes | None, bytes, str]], str]] = {
    "absolute name": (
        [("/etc/cron.d/shipyard", b"x", tarfile.REGTYPE, "")],
        "/etc/cron.d/shipyard is an absolute path",
    ),
    "dot-dot": ([("model/../../x", b"x", tarfile.REGTYPE, "")], "model/../../x has a '..' component"),
    "absolute link": ([("l", None, SYM, "/etc/passwd")], "l is a symbolic link to the absolute path /etc/passwd"),
    "link out": ([("model/l", None, SYM, "../../x")], "model/l is a symbolic link to ../../x, which leaves the bundle"),
    "out through another link": (
        [("up", None, SYM, "."), ("model", None, tarfile.DIRTYPE, ""), ("model/l", None, SYM, "../up/../x")],
        "model/l is a symbolic link to ../up/../x, which leaves the bundle",
    ),
    "file under a link": (
        [("real", None, tarfile.DIRTYPE, ""), ("l", None, SYM, "real"), ("l/x", b"x", tarfile.REGTYPE, "")],
        "l/x lies under l, which is a symbolic link",
    ),
    "link before its file under it": (
        [("l", None, SYM, "."), ("l/x", b"x", tarfile.REGTYPE, "")],
        "l/x lies under l, which is a symbolic link",
    ),
    "file under a file": (
        [("f", b"x", tarfile.REGTYPE, ""), ("f/x", b"x", tarfile.REGTYPE, "")],
        "f/x lies under f, which is a file",
    ),
    "hard link out": ([("h", None, LNK, "../x")], "the hard link h to ../x has a '..' component"),
    "hard link to a link": (
        [("l", None, SYM, "shipyard.toml"), ("h", None, LNK, "l")],
        "h is a hard link to l, which is not a regular file earlier",
    ),
    "hard link before its file": (
        [("h", None, LNK, "f"), ("f", b"x", tarfile.REGTYPE, "")],
        "h is a hard link to f, which is not a regular file earlier",
    ),
    "duplicate": ([("f", b"x", tarfile.REGTYPE, ""), ("f", b"y", tarfile.REGTYPE, "")], "f appears twice"),
    "device": ([("dev", None, tarfile.CHRTYPE, "")], "dev is a device"),
    "block device": ([("dev", None, tarfile.BLKTYPE, "")], "dev is a device"),
    "fifo": ([("pipe", None, tarfile.FIFOTYPE, "")], "pipe is a FIFO"),
    "unknown type": ([("odd", None, b"Z", "")], "odd is a member of type 'Z'"),
    "a loop": ([("a", None, SYM, "b"), ("b", None, SYM, "a")], f"goes through more than {MAX_LINKS} links"),
    "a long chain": (
        [(f"l{i}", None, SYM, f"l{i + 1}") for i in range(MAX_LINKS)] + [(f"l{MAX_LINKS}", None, SYM, MANIFEST)],
        f"l0 is a symbolic link to l1, which goes through more than {MAX_LINKS} links",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_crafted_member_is_refused_by_every_reader(
    case: str, tmp_path: Path, tmpdir_root: Path, outside: Path
) -> None:
    entries, message = REFUSED[case]
    evil = _evil(tmp_path, *entries)
    expected = re.escape(message)
    with pytest.raises(BundleError, match=expected) as raised, open_any(evil):
        pass
    assert str(evil) in str(raised.value)
    with pytest.raises(BundleError, match=expected):
        archives.read_bundle(evil)
    with pytest.raises(BundleError, match=expected):
        read_member(evil, MANIFEST)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(BundleError, match=expected):
        archives.extract_archive(evil, target)
    assert list(target.iterdir()) == []  # refused before the first byte
    assert list(tmpdir_root.iterdir()) == []
    _untouched(outside)


def test_a_sparse_member_is_refused(tmp_path: Path) -> None:
    sparse = entry("model/holes.bin", kind=tarfile.GNUTYPE_SPARSE)
    evil = write(tmp_path / "sparse.tar.gz", [manifest(), sparse], format=tarfile.GNU_FORMAT)
    with pytest.raises(BundleError, match=r"model/holes\.bin is a sparse file"), open_any(evil):
        pass


# -- sizes ----------------------------------------------------------------------------------------------------------
def test_a_small_archive_of_many_bytes_is_refused_by_its_headers(
    tmp_path: Path, tmpdir_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip bomb: 64 MiB of zeros compress to 64 KiB; with a 16 MiB limit nothing is written."""
    evil = write(tmp_path / "bomb.tar.gz", [manifest(), entry("model/zeros.bin", bytes(64 << 20))])
    assert evil.stat().st_size < 1 << 20
    monkeypatch.setenv("SHIPYARD_MAX_BUNDLE_BYTES", str(16 << 20))
    message = r"extracts to more than 16\.0 MiB \(model/zeros\.bin passes the limit; SHIPYARD_MAX_BUNDLE_BYTES"
    with pytest.raises(BundleError, match=message), open_any(evil):
        pass
    with pytest.raises(BundleError, match=message):
        archives.read_bundle(evil)
    assert list(tmpdir_root.iterdir()) == []
    monkeypatch.setenv("SHIPYARD_MAX_BUNDLE_BYTES", str(65 << 20))  # raised: the same archive opens
    with open_any(evil) as bundle:
        assert (bundle.path / "model" / "zeros.bin").stat().st_size == 64 << 20


def test_too_many_members_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = write(tmp_path / "many.tar.gz", [manifest()] + [entry(f"code/f{i}.py", b"") for i in range(20)])
    monkeypatch.setenv("SHIPYARD_MAX_BUNDLE_MEMBERS", "10")
    with pytest.raises(BundleError, match=r"holds more than 10 members .*SHIPYARD_MAX_BUNDLE_MEMBERS"), open_any(evil):
        pass
    assert archives.read_bundle(evil, limits=config.ArchiveLimits(max_members=21)).files == 21


def test_the_link_cap_is_small() -> None:
    from shipyard.bundle.untrusted import MAX_LINKS as cap

    assert cap == MAX_LINKS


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.ArchiveLimits.from_env({}) == config.ArchiveLimits(max_bytes=64 * 1024**3, max_members=100_000)
    env = {"SHIPYARD_MAX_BUNDLE_BYTES": "1000", "SHIPYARD_MAX_BUNDLE_MEMBERS": "7"}
    assert config.ArchiveLimits.from_env(env) == config.ArchiveLimits(max_bytes=1000, max_members=7)
    with pytest.raises(ShipyardError, match="SHIPYARD_MAX_BUNDLE_BYTES='lots' is not an integer"):
        config.ArchiveLimits.from_env({"SHIPYARD_MAX_BUNDLE_BYTES": "lots"})
    with pytest.raises(ShipyardError, match=r"SHIPYARD_MAX_BUNDLE_MEMBERS=0 is out of range"):
        config.ArchiveLimits.from_env({"SHIPYARD_MAX_BUNDLE_MEMBERS": "0"})


def test_an_archive_larger_than_the_free_space_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the limit but over the disk's free space (a disk with 1 MiB free, as shutil.disk_usage says)."""
    evil = write(tmp_path / "big.tar.gz", [manifest(), entry("model/zeros.bin", bytes(4 << 20))])
    target = tmp_path / "target"
    target.mkdir()
    usage = shutil.disk_usage(target)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    with pytest.raises(BundleError, match=rf"extracts to 4\.0 MiB, but {target} has only 1\.0 MiB free"):
        archives.extract_archive(evil, target)
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_a_truncated_archive_is_a_bundle_error(tmp_path: Path, mode: str) -> None:
    """An interrupted download: the archive stops inside a member's data."""
    evil = write(tmp_path / "short.tar.gz", [manifest(), entry("model/x.bin", os.urandom(100_000))], mode=mode)
    with evil.open("r+b") as handle:
        handle.truncate(evil.stat().st_size // 2)
    with pytest.raises(BundleError, match=r"short\.tar\.gz is not a readable tar archive"), open_any(evil):
        pass
    with pytest.raises(BundleError, match=r"short\.tar\.gz is not a readable tar archive"):
        archives.read_bundle(evil)


# -- what is accepted -------------------------------------------------------------------------------------------------
def test_modes_are_readable_by_everyone_whatever_the_archive_and_umask_say(tmp_path: Path) -> None:
    members = [
        manifest(),
        entry("model", kind=tarfile.DIRTYPE, mode=0o700),
        entry("model/secret.bin", b"x", mode=0o600),
        entry("code/run.sh", b"#!/bin/sh\n", mode=0o700),
        entry("code/setuid", b"x", mode=0o4777),
    ]
    archive = write(tmp_path / "modes.tar.gz", members)
    old = os.umask(0o077)
    try:
        with open_any(archive) as bundle:
            modes = {
                p.relative_to(bundle.path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in bundle.path.rglob("*")
            }
            root_mode = stat.S_IMODE(bundle.path.stat().st_mode)
    finally:
        os.umask(old)
    assert modes == {
        "shipyard.toml": 0o644,
        "model": 0o755,
        "model/secret.bin": 0o644,
        "code": 0o755,
        "code/run.sh": 0o755,
        "code/setuid": 0o755,
    }
    assert root_mode == 0o755


def test_an_archive_made_by_tar_with_dot_prefixes_and_links_inside(tmp_path: Path) -> None:
    """`tar -czf model.tar.gz -C dir .`: "./" names and a "." entry; relative links that stay inside."""
    members = [
        entry(".", kind=tarfile.DIRTYPE, mode=0o755),
        entry("./shipyard.toml", MANIFEST_TOML),
        entry("./blobs/abc", b"weights"),
        entry("./model", kind=tarfile.DIRTYPE, mode=0o755),
        entry("./model/model.bin", kind=SYM, linkname="../blobs/abc"),
        entry("./weights", kind=SYM, linkname="model"),
        entry("./model/copy.bin", kind=LNK, linkname="./blobs/abc"),
    ]
    archive = write(tmp_path / "model.tar.gz", members)
    with open_any(archive) as bundle:
        assert (bundle.path / "model" / "model.bin").read_bytes() == b"weights"
        assert (bundle.path / "weights" / "model.bin").read_bytes() == b"weights"
        assert (bundle.path / "model" / "copy.bin").read_bytes() == b"weights"
        assert os.readlink(bundle.path / "model" / "model.bin") == "../blobs/abc"
    assert read_member(archive, "weights/model.bin") == b"weights"  # through the links, as a reader finds it
    info = archives.read_bundle(archive)
    assert info.manifest.name == "crafted"
    # as a directory counts them: shipyard.toml, blobs/abc, the link to it, the hard link (not the link "weights")
    assert (info.file_count(), info.size_bytes()) == (4, len(MANIFEST_TOML) + 3 * len(b"weights"))


def test_read_bundle_reads_the_stream_and_extracts_nothing(
    tmp_path: Path, tmpdir_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write(
        tmp_path / "handler.tar.gz",
        [entry("code/inference.py", b"def model_fn(d):\n    pass\n"), entry("code/requirements.txt", b"numpy  # x\n")],
    )

    def no_writes(*args: object, **kwargs: object) -> None:
        raise AssertionError("inspect extracted something")

    monkeypatch.setattr(tarfile.TarFile, "extractall", no_writes)
    monkeypatch.setattr(tarfile.TarFile, "extract", no_writes)
    monkeypatch.setattr("shipyard.bundle.untrusted._Writer.write", no_writes)
    bundle = archives.read_bundle(archive)
    assert (bundle.manifest.name, bundle.flavor) == ("handler", "handler")
    assert bundle.requirements() == ["numpy"]
    assert bundle.handler_source() == (f"{archive}:code/inference.py", b"def model_fn(d):\n    pass\n")
    assert list(tmpdir_root.iterdir()) == []


# -- pack writes what it accepts ----------------------------------------------------------------------------------
@pytest.fixture
def linked_bundle(tmp_path: Path) -> Path:
    """A saved bundle whose model file is an absolute symbolic link to a blob inside the bundle (as a Hugging Face
    cache lays files out), plus a link to a directory."""
    path = tmp_path / "linked"
    shipyard.save(lambda batch: np.asarray(batch).sum(axis=1), path, example=np.ones((2, 3)), name="linked")
    (path / "blobs").mkdir()
    os.replace(path / "model" / "model.pkl", path / "blobs" / "sha-1234")
    (path / "model" / "model.pkl").symlink_to(path / "blobs" / "sha-1234")  # absolute, as `ln -s $PWD/…` makes
    (path / "weights").symlink_to(path / "model")
    return path


def test_pack_stores_a_link_inside_the_bundle_as_a_relative_link(linked_bundle: Path, tmp_path: Path) -> None:
    archive = pack(linked_bundle, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    assert links == {"model/model.pkl": "../blobs/sha-1234", "weights": "model"}
    with open_any(archive) as bundle:  # what pack writes, open_any accepts
        assert (bundle.path / "weights" / "model.pkl").read_bytes() == (
            linked_bundle / "blobs" / "sha-1234"
        ).read_bytes()
        assert bundle.manifest == Bundle.open(linked_bundle).manifest
    assert archives.read_bundle(archive).file_count() == Bundle.open(linked_bundle).file_count()


def test_pack_refuses_a_link_that_leaves_the_bundle(linked_bundle: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the archive")
    (linked_bundle / "code" / "notes.txt").symlink_to(secret)
    with pytest.raises(BundleError, match=rf"code/notes\.txt is a symbolic link to {secret}, outside the bundle"):
        pack(linked_bundle, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()
    with pytest.raises(BundleError, match=r"code/notes\.txt is a symbolic link to .*, outside the bundle"):
        bundle_files(linked_bundle)  # the image's build context takes links as pack does


def test_pack_refuses_a_link_to_a_directory_that_holds_it(linked_bundle: Path, tmp_path: Path) -> None:
    (linked_bundle / "code" / "loop").symlink_to("..")
    with pytest.raises(BundleError, match=r"code/loop is a symbolic link to \., which holds it"):
        pack(linked_bundle, tmp_path / "model.tar.gz")


def test_the_image_takes_the_files_links_lead_to(linked_bundle: Path) -> None:
    files = {f.as_posix() for f in bundle_files(linked_bundle)}
    assert {"model/model.pkl", "blobs/sha-1234", "weights/model.pkl"} <= files
