"""The local registry end to end through the console script: register a bundle and a run, list, show, approve,
reject, and the deploy rules (NotApproved, run:NAME without a bundle) that refuse before anything is made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from infra.cli import shipyard
from infra.train_runs import DIGEST, save_run
from shipyard.deploy.state import Deployment, StateStore
from shipyard.experiments.record import TrainRun
from shipyard.registry.local import sha256_of

pytestmark = pytest.mark.integration  # console-script subprocesses

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def parse(done: subprocess.CompletedProcess[str], schema: str) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(done.stdout)  # the whole of stdout is one document
    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))
    return document


def test_register_a_bundle_then_a_run_with_its_provenance(home: Path, digits_bundle: Path, digits_run: TrainRun,
                                                         tmp_path: Path) -> None:  # fmt: skip
    first = parse(shipyard("register", str(digits_bundle), "--group", "digits", "--description", "baseline",
                           "--output", "json"), "register.v1.json")["version"]  # fmt: skip
    assert (first["ref"], first["status"], first["version"]) == ("digits/1", "PendingManualApproval", 1)
    assert first["description"] == "baseline" and first["source"] == str(digits_bundle)
    archive = Path(first["model"])
    assert archive.is_file() and archive.is_relative_to(home / "models" / "digits" / "1")
    assert first["model_sha256"] == sha256_of(archive) and "application/json" in first["content_types"]
    assert first["run"] is None and first["metrics"] == {} and first["history"] == []

    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"accuracy": 0.97, "f1": 0.96}))
    done = shipyard("register", "run:digits-7", "--group", "digits", "--metrics", str(evaluation), "--output", "json")
    second = parse(done, "register.v1.json")["version"]
    assert second["ref"] == "digits/2" and second["source"] == "run:digits-7"
    assert second["metrics"] == {"accuracy": 0.97, "f1": 0.96} and second["metrics_source"] == str(evaluation)
    assert second["hyperparameters"] == {"epochs": "10", "lr": "0.1", "note": "a b=c {x}"}
    assert second["data"] == {"train": "sha256:" + "1" * 64, "validation": "etag:" + "2" * 32}
    assert second["data_uris"]["validation"] == "s3://bucket/val/"
    assert second["code"]["dirty"] is True and second["code"]["source_sha256"] == "e" * 64
    assert second["image"] == f"localhost/shipyard-digits@{DIGEST}" and second["image_digest"] == DIGEST
    assert second["run"]["name"] == "digits-7" and second["run"]["tracking_run_id"] == "f" * 32
    # without --metrics a run's final values are the version's metrics
    third = parse(shipyard("register", "run:digits-7", "--group", "digits", "--output", "json"), "register.v1.json")
    assert third["version"]["metrics"] == {"accuracy": 0.95, "loss": 0.2}


def test_metrics_in_sagemakers_model_quality_format(home: Path, digits_bundle: Path, tmp_path: Path) -> None:
    statistics = {
        "version": 0.0,
        "multiclass_classification_metrics": {
            "accuracy": {"value": 0.93, "standard_deviation": 0.01},
            "weighted_f1": {"value": 0.92, "standard_deviation": 0.01},
            "confusion_matrix": {"0": {"0": 10}},
        },
    }
    path = tmp_path / "statistics.json"
    path.write_text(json.dumps(statistics))
    done = shipyard("register", str(digits_bundle), "--group", "q", "--metrics", str(path), "--output", "json")
    assert parse(done, "register.v1.json")["version"]["metrics"] == {"accuracy": 0.93, "weighted_f1": 0.92}
    path.write_text(json.dumps({"accuracy": "high"}))
    bad = shipyard("register", str(digits_bundle), "--group", "q", "--metrics", str(path))
    assert bad.returncode == 2 and "accuracy" in bad.stderr and "not numbers" in bad.stderr
    assert "q/2" not in shipyard("models", "list", "q").stdout  # nothing was registered


def test_list_show_approve_reject(home: Path, digits_bundle: Path) -> None:
    for _ in range(2):
        assert shipyard("register", str(digits_bundle), "--group", "digits").returncode == 0
    listed = parse(shipyard("models", "list", "--output", "json"), "models-list.v1.json")
    assert listed["registry"] == "local" and listed["where"] == str(home / "registry.json")
    (group,) = listed["groups"]
    assert [v["ref"] for v in group["versions"]] == ["digits/1", "digits/2"]
    table = shipyard("models", "list", env={"COLUMNS": "200"})
    assert "digits/2" in table.stdout and "PendingManualApproval" in table.stdout

    approved = parse(shipyard("models", "approve", "digits/1", "--reason", "meets the bar", "--output", "json"),
                     "models-approval.v1.json")  # fmt: skip
    assert approved["previous_status"] == "PendingManualApproval" and approved["version"]["status"] == "Approved"
    assert approved["version"]["approval_reason"] == "meets the bar"
    no_reason = shipyard("models", "reject", "digits/2")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    rejected = parse(shipyard("models", "reject", "digits/2", "--reason", "drifts on 7s", "--output", "json"),
                     "models-approval.v1.json")  # fmt: skip
    assert rejected["version"]["status"] == "Rejected"
    # as in SageMaker, a rejected version may be approved later, but an approved one is not rejected
    again = parse(shipyard("models", "approve", "digits/2", "--output", "json"), "models-approval.v1.json")
    assert (again["previous_status"], again["version"]["status"]) == ("Rejected", "Approved")
    refused = shipyard("models", "reject", "digits/1", "--reason", "changed my mind", env={"COLUMNS": "300"})
    assert refused.returncode == 2 and "does not change an Approved version to Rejected" in refused.stderr

    shown = parse(shipyard("models", "show", "digits/1", "--output", "json"), "models-show.v1.json")
    assert shown["group"] is None and shown["version"]["approval_reason"] == "meets the bar"
    whole = parse(shipyard("models", "show", "digits", "--output", "json"), "models-show.v1.json")
    assert whole["version"] is None and len(whole["group"]["versions"]) == 2
    text = shipyard("models", "show", "digits/2", env={"COLUMNS": "200"}).stdout
    assert "status: Approved" in text and "never deployed" in text


def test_unknown_names_list_the_known_ones(home: Path, digits_bundle: Path) -> None:
    assert shipyard("register", str(digits_bundle), "--group", "digits").returncode == 0
    cases = [
        (("models", "show", "digits/4"), "digits/1"),
        (("models", "show", "digigts"), "digits"),
        (("models", "approve", "other/1"), "digits"),
        (("models", "list", "nope"), "digits"),
    ]
    for args, known in cases:
        done = shipyard(*args, env={"COLUMNS": "300"})
        assert done.returncode == 2 and known in done.stderr, done.stderr
    bad_group = shipyard("register", str(digits_bundle), "--group", "no_underscores")
    assert bad_group.returncode == 2 and "--group" in bad_group.stderr
    not_a_bundle = shipyard("register", str(home), "--group", "digits")
    assert not_a_bundle.returncode == 2 and "not a Shipyard bundle" in not_a_bundle.stderr.replace("\n", " ")


def test_deploy_refuses_an_unapproved_version_and_a_run_without_a_bundle(home: Path, digits_bundle: Path) -> None:
    assert shipyard("register", str(digits_bundle), "--group", "digits").returncode == 0
    refused = shipyard("deploy", "digits/1", "--name", "d1", env={"COLUMNS": "300"})
    assert refused.returncode == 2, refused.stderr
    assert "PendingManualApproval" in refused.stderr and "--allow-unapproved" in refused.stderr
    assert StateStore(home / "state.json").all() == []  # nothing deployed, nothing recorded
    # --allow-unapproved lets it through (a dry run here: the plan is made from the version's archive)
    planned = shipyard("deploy", "digits/1", "--name", "d1", "--allow-unapproved", "--dry-run", env={"COLUMNS": "300"})
    assert planned.returncode == 0 and "plan: deploy d1 to local" in planned.stdout, planned.stderr
    save_run("no-bundle", None)
    wrapped = shipyard("deploy", "run:no-bundle", "--name", "d2", env={"COLUMNS": "300"})
    assert wrapped.returncode == 2 and "--handler" in wrapped.stderr and "no Shipyard bundle" in wrapped.stderr
    assert shipyard("register", "run:no-bundle", "--group", "digits").returncode == 2
    missing = shipyard("deploy", "run:never-ran", "--name", "d3", env={"COLUMNS": "300"})
    assert missing.returncode == 2 and "no training run named 'never-ran'" in missing.stderr


def test_a_state_file_written_before_the_registry_still_loads(tmp_path: Path) -> None:
    when = "2026-01-01T00:00:00+00:00"
    old = {"name": "d", "target": "local", "status": "InService", "source": "/b", "created_at": when,
           "updated_at": when, "details": {"version": 1}, "resources": []}  # fmt: skip
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps({"version": 1, "deployments": {"d": old}}))
    record = StateStore(path).get("d")
    assert record is not None and record.model_version is None and record.model_registry is None
    record.model_version, record.model_registry = "digits/3", "local"
    StateStore(path).put(record)
    again = Deployment.from_json(orjson.loads(path.read_bytes())["deployments"]["d"])
    assert (again.model_version, again.model_registry) == ("digits/3", "local")
