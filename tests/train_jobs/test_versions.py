"""The code and data versions a run records, and the training image's Containerfile (pure: no engine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shipyard.image.containerfile import ImageSpec, render
from shipyard.settings import Settings
from shipyard.train import versions
from shipyard.train.versions import channel_version, code_version


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip


def test_code_version_in_and_out_of_git(tmp_path: Path) -> None:
    source = tmp_path / "repo" / "src"
    source.mkdir(parents=True)
    (source / "train.py").write_text("print(1)\n")
    (source / ".hidden").write_text("not sent")
    outside = code_version(source)
    assert outside.commit is None and not outside.dirty and len(outside.source_sha256) == 64

    _git(tmp_path / "repo", "init", "-q")
    _git(tmp_path / "repo", "add", ".")
    _git(tmp_path / "repo", "commit", "-qm", "one")
    clean = code_version(source)
    assert clean.commit and len(clean.commit) == 40 and not clean.dirty and clean.diff_sha256 is None
    assert clean.source_sha256 == outside.source_sha256  # the same files, the same hash

    (source / "train.py").write_text("print(2)\n")
    edited = code_version(source)
    assert edited.dirty and edited.diff_sha256 and edited.source_sha256 != clean.source_sha256
    (source / "new.py").write_text("x = 1\n")
    untracked = code_version(source)
    assert untracked.dirty and untracked.diff_sha256 != edited.diff_sha256
    (source / "new.py").write_text("x = 2\n")
    assert code_version(source).diff_sha256 != untracked.diff_sha256  # untracked contents count
    (source / ".hidden").write_text("changed")
    assert code_version(source).source_sha256 == code_version(source).source_sha256


def test_channel_version_is_cached_by_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env({"SHIPYARD_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n")
    (data / "sub" / "b.csv").write_text("3,4\n")
    reads: list[Path] = []
    digest = versions._file_digest
    monkeypatch.setattr(versions, "_file_digest", lambda path: reads.append(path) or digest(path))
    first = channel_version("train", data, settings)
    assert first.version.startswith("sha256:") and first.files == 2 and first.size == 8
    assert first.content_type == "text/csv" and len(reads) == 2
    again = channel_version("train", data, settings)
    assert again.version == first.version and len(reads) == 2  # nothing read again
    (data / "a.csv").write_text("1,3\n")  # same size, new mtime
    changed = channel_version("train", data, settings)
    assert changed.version != first.version and len(reads) == 3
    (data / "a.csv").rename(data / "c.csv")
    assert channel_version("train", data, settings).version != changed.version  # names count
    single = channel_version("one", data / "c.csv", settings)
    assert single.files == 1 and single.uri == str((data / "c.csv").resolve())


def test_training_containerfile() -> None:
    text = render(ImageSpec(base="python:3.11-slim", bake=False, has_code=False, training_program="train.py"))
    lines = text.splitlines()
    assert lines[-1] == "COPY training-code/ /opt/ml/code/"  # the last layer: a code edit rebuilds only it
    assert "SAGEMAKER_PROGRAM=train.py" in text and "SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/code" in text
    assert "COPY model/" not in text and 'CMD ["serve"]' in text  # the model is mounted; it serves too
    assert "SAGEMAKER_PROGRAM" not in render(ImageSpec(base="python:3.11-slim"))
