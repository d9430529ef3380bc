"""Bundles on disk: opening, the manifest, and model.tar.gz (pack, open_any, read_member)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

import shipyard
from shipyard.bundle import Bundle
from shipyard.bundle.archive import open_any, pack
from shipyard.bundle.manifest import MANIFEST
from shipyard.errors import BundleError


def read_member(archive: Path, name: str) -> bytes | None:
    """One file of ``archive`` as a reader of the extracted bundle finds it (None: no such file), through the public
    reader (``open_any``: every member checked, then extracted into a temporary directory)."""
    with open_any(archive) as bundle:
        path = bundle.path / name
        return path.read_bytes() if path.is_file() else None


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "bundle"
    shipyard.save(lambda batch: np.asarray(batch).sum(axis=1), path, example=np.ones((2, 3)), name="summer")
    (path / "code" / "__pycache__").mkdir()
    (path / "code" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (path / ".DS_Store").write_bytes(b"junk")
    return path


def test_pack_layout_is_what_sagemaker_extracts(small_bundle: Path, tmp_path: Path) -> None:
    archive = pack(small_bundle, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert {"shipyard.toml", "example.json", "model/model.pkl", "code/requirements.txt"} <= set(names)
    assert not any(name.startswith(("/", "./", "bundle/")) for name in names)  # files at the archive's root
    assert not any("__pycache__" in name or name.startswith(".") for name in names)
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert sorted(p.name for p in archive.parent.iterdir()) == ["model.tar.gz"]  # no temporary left


def test_pack_is_reproducible_byte_for_byte(small_bundle: Path, tmp_path: Path) -> None:
    first = pack(small_bundle, tmp_path / "a.tar.gz").read_bytes()
    later = time.time() + 3600
    for path in small_bundle.rglob("*"):
        os.utime(path, (later, later))  # touched files, same content: same archive
    second = pack(small_bundle, tmp_path / "b.tar.gz").read_bytes()
    assert first == second
    assert first[:2] == b"\x1f\x8b"
    assert first[4:8] == b"\x00\x00\x00\x00"  # no gzip timestamp


def test_pack_changes_when_content_changes(small_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in small_bundle.rglob("*"):
        target = copy / path.relative_to(small_bundle)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    before = pack(copy, tmp_path / "a.tar.gz").read_bytes()
    (copy / "code" / "requirements.txt").write_text("numpy\n")
    assert pack(copy, tmp_path / "b.tar.gz").read_bytes() != before


def test_pack_into_the_bundle_itself_leaves_the_archive_out(small_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_bundle, copy)
    first = pack(copy, copy / "model.tar.gz").read_bytes()
    second = pack(copy, copy / "model.tar.gz").read_bytes()  # the first archive now lies in the bundle
    assert first == second
    with tarfile.open(copy / "model.tar.gz") as tar:
        assert "model.tar.gz" not in tar.getnames()


def test_open_any_reads_an_archive(small_bundle: Path, tmp_path: Path) -> None:
    archive = pack(small_bundle, tmp_path / "model.tar.gz")
    with open_any(archive) as bundle:
        extracted = bundle.path
        assert bundle.manifest == Bundle.open(small_bundle).manifest
        assert bundle.requirements() == Bundle.open(small_bundle).requirements()
        assert (extracted / "model" / "model.pkl").is_file()
    assert not extracted.exists()  # the temporary directory is gone afterwards
    assert read_member(archive, MANIFEST) == (small_bundle / MANIFEST).read_bytes()
    assert read_member(archive, "no/such/file") is None


def test_open_any_reads_a_directory(small_bundle: Path) -> None:
    with open_any(small_bundle) as bundle:
        assert bundle.path == small_bundle


def test_open_any_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"), open_any(tmp_path / "missing.tar.gz"):
        pass
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    with pytest.raises(BundleError, match="not a readable tar archive"), open_any(corrupt):
        pass


def test_open_any_refuses_path_traversal(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    # refused by Shipyard's own check, naming the member (tarfile's filter said "not a readable tar archive")
    with pytest.raises(BundleError, match=r"member \.\./outside\.txt has a '\.\.' component"), open_any(evil):
        pass
    assert not (tmp_path / "outside.txt").exists()


def test_pack_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is not a model bundle"):
        pack(tmp_path, tmp_path / "x.tar.gz")
    with pytest.raises(BundleError, match="is not a directory"):
        pack(tmp_path / "missing", tmp_path / "x.tar.gz")


def test_a_handler_directory_is_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    bundle = Bundle.open(tmp_path)
    assert bundle.flavor == "handler"
    assert bundle.manifest.batchable is False
    assert bundle.handler_script == tmp_path / "code" / "inference.py"
    (tmp_path / "code" / "serve.py").write_text("")
    assert Bundle.open(tmp_path, program="serve.py").handler_script == tmp_path / "code" / "serve.py"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is = not toml [", "not valid TOML"),
        ("format = 1\n[input]\nkind = 'any'\n", "no \\[model\\] table with a flavor"),
        ("format = 99\n[model]\nflavor = 'sklearn'\n", "newer Shipyard"),
    ],
)
def test_bad_manifest(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(BundleError, match=message):
        Bundle.open(tmp_path)


def test_bad_example_file(small_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_bytes((small_bundle / MANIFEST).read_bytes())
    (tmp_path / "example.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"example\.json is not valid JSON"):
        Bundle.open(tmp_path).example()
