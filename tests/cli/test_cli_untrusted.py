"""``shipyard inspect`` and ``shipyard serve`` given a crafted model.tar.gz, through the installed console script: an
exit code and an error line, no traceback, and nothing written outside the temporary directory. And a bundle with
a link inside it packs, inspects and serves."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

import shipyard
from infra.archives import entry, extraction_root_length, manifest, path_max_escape, write
from infra.cli import SHIPYARD
from infra.cli import shipyard as run_shipyard
from infra.server import ServerFactory, server_env
from shipyard.bundle.archive import pack
from shipyard.cli import app


@pytest.fixture
def aimed(tmp_path: Path) -> tuple[Path, Path]:
    """The TMPDIR the command runs with, and the directory outside it the crafted archive aims at."""
    tmpdir, outside = tmp_path / "tmp", tmp_path / "outside"
    tmpdir.mkdir()
    outside.mkdir()
    (outside / "flag").write_text("original")
    return tmpdir, outside


def _nothing_escaped(tmpdir: Path, outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["flag"]
    assert (outside / "flag").read_text() == "original"
    assert list(tmpdir.iterdir()) == []  # no extraction left behind either


def _one_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    text = "".join(done.stderr.split())  # rich wraps the line at 80 columns, inside a long path too
    assert text.startswith("error:") and all("".join(phrase.split()) in text for phrase in phrases), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_inspect_of_the_path_max_link_chain(tmp_path: Path, aimed: tuple[Path, Path]) -> None:
    """CVE-2025-4517 against `shipyard inspect`: before, it wrote outside, overwrote a file and ended in a traceback."""
    tmpdir, outside = aimed
    evil = path_max_escape(tmp_path / "evil.tar.gz", root_length=extraction_root_length(tmpdir), target=outside)
    done = run_shipyard("inspect", str(evil), env={"TMPDIR": str(tmpdir)})
    _nothing_escaped(tmpdir, outside)
    _one_error(done, str(evil), "lies under a, which is a symbolic link")
    json_done = run_shipyard("inspect", str(evil), "--output", "json", env={"TMPDIR": str(tmpdir)})
    _one_error(json_done, "symbolic link")
    assert json_done.stdout == ""
    _nothing_escaped(tmpdir, outside)


def test_serve_of_the_path_max_link_chain(tmp_path: Path, aimed: tuple[Path, Path]) -> None:
    """The same archive (without a manifest, so that nothing would be served) against `shipyard serve`."""
    tmpdir, outside = aimed
    root_length = extraction_root_length(tmpdir)
    evil = path_max_escape(tmp_path / "evil.tar.gz", root_length=root_length, target=outside, with_manifest=False)
    done = subprocess.run(
        [SHIPYARD, "serve", str(evil)], env=server_env({"TMPDIR": str(tmpdir), "SAGEMAKER_BIND_TO_PORT": "0"}),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    _nothing_escaped(tmpdir, outside)
    _one_error(done, str(evil), "symbolic link")


@pytest.mark.parametrize("command", ["inspect", "serve"])
def test_a_bomb_is_refused_by_the_limit_before_extraction(
    tmp_path: Path, aimed: tuple[Path, Path], command: str
) -> None:
    """32 MiB of zeros in a 32 KiB archive, with SHIPYARD_MAX_BUNDLE_BYTES at 1 MiB."""
    tmpdir, outside = aimed
    evil = write(tmp_path / "bomb.tar.gz", [manifest(), entry("model/zeros.bin", bytes(32 << 20))])
    env = server_env({"TMPDIR": str(tmpdir), "SAGEMAKER_BIND_TO_PORT": "0", "SHIPYARD_MAX_BUNDLE_BYTES": str(1 << 20)})
    done = subprocess.run(
        [SHIPYARD, command, str(evil)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    _nothing_escaped(tmpdir, outside)
    _one_error(done, "extracts to more than 1.0 MiB", "model/zeros.bin", "SHIPYARD_MAX_BUNDLE_BYTES")


def test_inspect_of_an_archive_extracts_nothing(
    digits_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inspect reads the manifest, the requirements and the member sizes from the stream: the same answer as for
    the directory, without a single file written."""
    archive = pack(digits_bundle, tmp_path / "model.tar.gz")
    runner = CliRunner()
    directory = orjson.loads(runner.invoke(app, ["inspect", str(digits_bundle), "--json"]).stdout)

    def no_extraction(*args: object, **kwargs: object) -> None:
        raise AssertionError("inspect extracted the archive")

    monkeypatch.setattr("tarfile.TarFile.extractall", no_extraction)
    monkeypatch.setattr("tarfile.TarFile.extract", no_extraction)
    monkeypatch.setattr("tempfile.mkdtemp", no_extraction)  # not even an empty temporary directory
    result = runner.invoke(app, ["inspect", str(archive), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    packed = orjson.loads(result.stdout)
    assert packed.pop("archive_bytes") == archive.stat().st_size and directory.pop("archive_bytes") is None
    assert packed.pop("source") == str(archive) and directory.pop("source") == str(digits_bundle)
    assert packed == directory


@pytest.mark.integration
def test_a_bundle_with_a_link_inside_packs_inspects_and_serves(tmp_path: Path, running_server: ServerFactory) -> None:
    bundle = tmp_path / "linked"
    shipyard.save(lambda batch: np.asarray(batch).sum(axis=1), bundle, example=np.ones((2, 3)), name="linked")
    (bundle / "blobs").mkdir()
    os.replace(bundle / "model" / "model.pkl", bundle / "blobs" / "sha-1234")
    (bundle / "model" / "model.pkl").symlink_to(bundle / "blobs" / "sha-1234")  # absolute, inside the bundle
    archive = tmp_path / "model.tar.gz"
    packed = run_shipyard("pack", str(bundle), "-o", str(archive))
    assert packed.returncode == 0, packed.stderr
    inspected = run_shipyard("inspect", str(archive), "--output", "json")
    assert inspected.returncode == 0, inspected.stderr
    info = orjson.loads(inspected.stdout)
    assert (info["name"], info["files"]) == ("linked", sum(1 for p in bundle.rglob("*") if p.is_file()))
    server = running_server(archive, command=[SHIPYARD, "serve", str(archive)])
    answer = httpx.post(f"{server.url}/invocations", json={"instances": [[1, 2, 3]]}, timeout=30)
    assert (answer.status_code, answer.json()) == (200, {"predictions": [6.0]})


def test_pack_of_a_link_that_leaves_the_bundle_is_one_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "code").mkdir(parents=True)
    (bundle / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    (tmp_path / "credentials").write_text("secret")
    (bundle / "code" / "config.ini").symlink_to(tmp_path / "credentials")
    done = run_shipyard("pack", str(bundle), "-o", str(tmp_path / "model.tar.gz"))
    _one_error(done, "code/config.ini is a symbolic link to", "outside the bundle")
    assert not (tmp_path / "model.tar.gz").exists()


CRAFTED_MANIFESTS = {
    "columns without their dtypes": (
        b'[model]\nflavor = "python"\n[input]\nkind = "columns"\nnames = ["a", "b"]\ndtypes = ["float64"]\n',
        "[input] has 2 names but 1 dtypes",
    ),
    "an output shape that is a number": (b'[model]\nflavor = "python"\n[output]\nshape = 5\n', "[output] shape"),
    "a python version that is a list": (b'[model]\nflavor = "python"\n[runtime]\npython = [3]\n', "[runtime] python"),
    "input that is a number": (b'input = 3\n[model]\nflavor = "python"\n', "is not a valid manifest"),
    "not UTF-8": (b"\xff\xfe[model]", "shipyard.toml is not UTF-8 text"),
    "a format that is text": (b'format = "one"\n[model]\nflavor = "python"\n', "format must be an integer"),
}


@pytest.mark.parametrize("case", list(CRAFTED_MANIFESTS))
def test_inspect_of_a_crafted_manifest_is_one_error(tmp_path: Path, case: str) -> None:
    text, message = CRAFTED_MANIFESTS[case]
    archive = write(tmp_path / "model.tar.gz", [entry("shipyard.toml", text)])
    for output in ("table", "json"):
        _one_error(run_shipyard("inspect", str(archive), "--output", output), f"{archive}:shipyard.toml", message)
