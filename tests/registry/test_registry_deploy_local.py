"""Registered versions deployed with the real local target (Podman, the image built from the version's archive):
deploy, a refused update, an update that fails and rolls back, an update with --allow-unapproved, cleanup, and
each version's history after them."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from infra.base_image import ensure_base_image
from infra.cli import shipyard
from shipyard.deploy.state import StateStore

pytestmark = pytest.mark.integration


def history(ref: str) -> list[dict[str, str]]:
    done = shipyard("models", "show", ref, "--output", "json")
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, str]] = json.loads(done.stdout)["version"]["history"]
    return entries


def test_deploy_update_rollback_and_cleanup_append_to_the_versions_history(
    home: Path, digits_bundle: Path, tmp_path: Path
) -> None:
    base = ensure_base_image()
    broken = tmp_path / "broken"
    shutil.copytree(digits_bundle, broken)
    (broken / "model" / "model.joblib").write_bytes(b"this is not a joblib file")  # the server cannot load it
    for bundle in (digits_bundle, digits_bundle, broken):
        assert shipyard("register", str(bundle), "--group", "digits").returncode == 0
    assert shipyard("models", "approve", "digits/1").returncode == 0  # digits/2 stays PendingManualApproval
    name = f"reg-{uuid.uuid4().hex[:6]}"  # other sessions may share this Podman
    state = StateStore(home / "state.json")
    try:
        done = shipyard("deploy", "digits/1", "--name", name, "--base", base, "--engine", "podman", timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        record = state.get(name)
        assert record is not None and (record.model_version, record.model_registry) == ("digits/1", "local")
        assert record.source.endswith("models/digits/1/model.tar.gz") and record.url
        assert httpx.get(f"{record.url}/ping", timeout=10).status_code == 200

        refused = shipyard("deploy", "--update", name, "digits/2", env={"COLUMNS": "300"})
        assert refused.returncode == 2 and "--allow-unapproved" in refused.stderr
        assert state.get(name).model_version == "digits/1"  # type: ignore[union-attr]

        failed = shipyard("deploy", "--update", name, "digits/3", "--allow-unapproved", "--startup-timeout", "120",
                          timeout=600)  # fmt: skip
        assert failed.returncode == 3, failed.stdout + failed.stderr  # DeployFailed; the previous version is back
        record = state.get(name)
        assert record is not None and record.model_version == "digits/1" and record.status == "InService"

        updated = shipyard("deploy", "--update", name, "digits/2", "--allow-unapproved", timeout=600)
        assert updated.returncode == 0, updated.stdout + updated.stderr
        record = state.get(name)
        assert record is not None and record.model_version == "digits/2" and record.status == "InService"
        assert httpx.get(f"{record.url}/ping", timeout=10).status_code == 200
    finally:
        gone = shipyard("cleanup", name, timeout=600)
        assert gone.returncode == 0, gone.stdout + gone.stderr
    first, second, third = history("digits/1"), history("digits/2"), history("digits/3")
    assert [(h["action"], h["deployment"], h["target"]) for h in first] == [
        ("deploy", name, "local"), ("rollback", name, "local"), ("update", name, "local"),
    ]  # fmt: skip
    assert (
        first[1]["detail"].startswith("the update to digits/3 failed") and first[2]["detail"] == "replaced by digits/2"
    )
    assert [h["action"] for h in third] == ["rollback"] and "back on digits/1" in third[0]["detail"]
    assert [h["action"] for h in second] == ["update", "cleanup"] and second[0]["detail"] == "from digits/1"
    assert state.get(name) is None
    text = shipyard("models", "show", "digits/2", env={"COLUMNS": "200"}).stdout
    assert "deployment history" in text and "cleanup" in text and name in text
