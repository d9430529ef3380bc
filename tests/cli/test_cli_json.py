"""``--output json`` of inspect, bench and monitor check through the console script: stdout is exactly one
JSON document, valid against its schema in docs/schemas/, holding what the command did (the files it wrote,
the requests it sent). status and verify are covered on a real deployment in tests/deploy/test_local_cli.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest

from infra.cli import shipyard
from infra.server import Server

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def parse(done: subprocess.CompletedProcess[str], schema: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(done.stdout)  # all of stdout, nothing before or after
    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))
    return document


def test_every_schema_is_a_valid_json_schema() -> None:
    names = sorted(p.name for p in SCHEMAS.glob("*.json"))
    registry = ["models-approval.v1.json", "models-list.v1.json", "models-show.v1.json", "register.v1.json"]
    runs = ["runs-show.v1.json", "runs.v1.json", "train.v1.json"]
    expected = ["bench.v1.json", "inspect.v1.json", "monitor-check.v1.json", "status.v1.json", "verify.v1.json"]
    expected += ["monitor-bias.v1.json"]
    # monitor explain: below, on the digits bundle
    expected += ["monitor-explain.v1.json"]
    # compile: below, on a copy of the digits bundle
    expected += ["compile.v1.json"]
    # expose and unexpose: run through the console script on a sagemaker deployment against moto, in
    # tests/deploy/test_expose_sagemaker.py::test_the_cli_exposes_and_unexposes_with_json
    public_api = ["expose.v1.json", "unexpose.v1.json"]
    # budget status: against moto in tests/deploy/test_cost.py::test_budget_set_status_and_remove_through_the_cli
    cost = ["budget.v1.json"]
    # export: tests/deploy/test_export.py::test_the_cli_writes_the_files_and_forgets
    handover = ["export.v1.json"]
    # invoke --stream --json: tests/cli/test_invoke_stream.py::test_invoke_stream_to_a_file_with_a_json_summary
    # transform: below, on a real server; on sagemaker in tests/deploy/test_transform_sagemaker.py
    # invoke --async --json and results --output json: on a local --async deployment in
    # tests/deploy/test_async_queue.py::test_the_cli_queues_waits_and_fetches_results
    # models add: tests/deploy/test_multimodel_deploy.py::test_local_multi_model_deploy_add_invoke_and_cleanup
    hosting_modes = [
        "invoke-async.v1.json",
        "invoke-stream.v1.json",
        "models-add.v1.json",
        "results.v1.json",
        "transform.v1.json",
    ]
    assert names == sorted(expected + registry + runs + public_api + cost + handover + hosting_modes)
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["schema"]["const"] == schema["$id"]  # shipyard.COMMAND/1


def test_inspect_json_of_a_directory_and_an_archive(digits_bundle: Path, tmp_path: Path) -> None:
    directory = parse(shipyard("inspect", str(digits_bundle), "--output", "json"), "inspect.v1.json")
    assert directory["schema"] == "shipyard.inspect/1"
    assert (directory["name"], directory["flavor"], directory["input"]) == ("digits", "sklearn", "float64[N × 64]")
    assert directory["archive_bytes"] is None and directory["handler_functions"] is None
    assert directory["files"] == sum(1 for p in digits_bundle.rglob("*") if p.is_file())

    archive = tmp_path / "model.tar.gz"
    assert shipyard("pack", str(digits_bundle), "-o", str(archive)).returncode == 0
    packed = parse(shipyard("inspect", str(archive), "--output", "json"), "inspect.v1.json")
    assert packed["archive_bytes"] == archive.stat().st_size
    same = {k: v for k, v in packed.items() if k not in ("source", "archive_bytes")}
    assert same == {k: v for k, v in directory.items() if k not in ("source", "archive_bytes")}
    assert json.loads(shipyard("inspect", str(archive), "--json").stdout) == packed  # the old flag still works


def test_compile_json_and_inspect_of_the_compiled_directory_and_archive(digits_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx")
    bundle = tmp_path / "digits"
    shutil.copytree(digits_bundle, bundle)
    done = parse(shipyard("compile", str(bundle), "--rows", "200", "--output", "json"), "compile.v1.json")
    assert (done["flavor"], done["status"], done["reason"], done["original_kept"]) == ("onnx", "onnx", "", True)
    assert done["check"]["rows"] >= 200 and done["check"]["labels_equal"] is True
    assert done["converter"].startswith("skl2onnx ") and done["sizes"]["onnx_bytes"] > 0

    directory = parse(shipyard("inspect", str(bundle), "--output", "json"), "inspect.v1.json")
    assert directory["flavor"] == "onnx" and directory["compiled"]["served"] == "onnx"
    forms = directory["compiled"]["forms"]
    assert forms["native"]["artifact"] == "model/model.joblib" and forms["onnx"]["artifact"] == "model/model.onnx"
    assert forms["onnx"]["bytes"] == (bundle / "model/model.onnx").stat().st_size
    assert [r.split("==")[0] for r in forms["onnx"]["requirements"]] == ["numpy", "onnxruntime"]
    assert directory["compiled"]["check"]["tolerance"] >= directory["compiled"]["check"]["max_abs_error"]
    archive = tmp_path / "model.tar.gz"
    assert shipyard("pack", str(bundle), "-o", str(archive)).returncode == 0
    packed = parse(shipyard("inspect", str(archive), "--output", "json"), "inspect.v1.json")
    assert packed["compiled"] == directory["compiled"]
    text = shipyard("inspect", str(archive)).stdout
    assert "onnx form" in text and "native form" in text and "labels equal" in text and "tolerance" in text

    again = shipyard("compile", str(bundle), "--mode", "maybe")
    assert again.returncode != 0 and "not a compile mode" in again.stderr


@pytest.mark.integration
def test_bench_json_is_the_report_it_wrote(
    digits_server: Server, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "rows.json"
    data.write_bytes(orjson.dumps(digits_rows))
    out = tmp_path / "report"
    done = shipyard(
        "bench", digits_server.url, "--data", str(data), "--sizes", "1,3", "--repeats", "2", "--concurrency", "1,2",
        "--duration", "0.3", "--no-plot", "--out", str(out), "--output", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = parse(done, "bench.v1.json")
    assert "one request with 3 items" in done.stderr  # progress goes to stderr
    assert document["target"] == digits_server.url
    assert [(r["items"], r["requests"], r["errors"]) for r in document["sizes"]] == [(1, 2, {}), (3, 2, {})]
    assert [(r["mode"], r["level"]) for r in document["sweep"]] == [("closed", 1), ("closed", 2)]
    assert all(r["requests"] > 0 and not r["errors"] for r in document["sweep"])
    assert document["files"] == {kind: str(out / f"report.{kind}") for kind in ("json", "md", "html")}
    written = json.loads((out / "report.json").read_text())
    assert written == {k: v for k, v in document.items() if k not in ("schema", "files")}


def _frame(path: Path, rows: np.ndarray) -> None:
    path.write_text("f1,f2\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in rows))


@pytest.mark.integration
def test_monitor_check_json_is_what_it_wrote(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    _frame(tmp_path / "train.csv", rng.normal(0.0, 1.0, size=(2000, 2)))
    shifted = rng.normal(0.0, 1.0, size=(2000, 2))
    shifted[:, 0] += 3.0  # f1 drifts, f2 does not
    _frame(tmp_path / "current.csv", shifted)
    assert shipyard("monitor", "baseline", str(tmp_path / "train.csv"), "-o", str(tmp_path / "base")).returncode == 0

    out = tmp_path / "out"
    done = shipyard(
        "monitor", "check", str(tmp_path / "current.csv"), "-b", str(tmp_path / "base"), "-o", str(out),
        "--output", "json",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # violations: the exit code says so, as without --output json
    document = parse(done, "monitor-check.v1.json")
    assert document["schema"] == "shipyard.monitor-check/1"
    assert document["passed"] is False and document["drifted"] == ["f1"] and document["rows"] == 2000
    on_disk = json.loads((out / "constraint_violations.json").read_text())["violations"]
    assert document["violations"] == on_disk
    assert any(v["feature_name"] == "f1" and v["constraint_check_type"] == "baseline_drift_check" for v in on_disk)
    drift = json.loads((out / "drift.json").read_text())
    assert [(f["name"], f["score"], f["drifted"]) for f in document["features"]] == [
        (f["name"], f["score"], f["drifted"]) for f in drift["features"]
    ]
    assert document["files"]["drift"] == str(out / "drift.json")
    assert document["bias"] is None and document["explain"] is None  # a baseline without --bias / --explain

    same = shipyard(
        "monitor", "check", str(tmp_path / "train.csv"), "-b", str(tmp_path / "base"), "-o", str(tmp_path / "o2"),
        "--output", "json",
    )  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert parse(same, "monitor-check.v1.json")["passed"] is True


@pytest.mark.integration
def test_monitor_bias_json_is_what_it_wrote(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    n = 3000
    female = rng.random(n) < 0.4
    y = (rng.random(n) < np.where(female, 0.3, 0.6)).astype(int)  # a planted disparity in the labels
    pred = np.where(rng.random(n) < 0.9, y, 1 - y)
    lines = "".join(f"{'female' if f else 'male'},{a},{b}\n" for f, a, b in zip(female, y, pred, strict=True))
    (tmp_path / "data.csv").write_text("gender,y,pred\n" + lines)
    out = tmp_path / "bias"
    done = shipyard(
        "monitor", "bias", str(tmp_path / "data.csv"), "--label", "y", "--facet", "gender", "--predicted", "pred",
        "--out", str(out), "--output", "json",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    document = parse(done, "monitor-bias.v1.json")
    assert document["schema"] == "shipyard.monitor-bias/1" and document["passed"] is False
    assert document["rows"] == n and document["label_value_or_threshold"] == "1"
    assert document["violations"] == json.loads((out / "bias_violations.json").read_text())["violations"]
    analysis = json.loads((out / "analysis.json").read_text())
    written = [
        (m["value_or_threshold"], metric["name"], metric["value"])
        for m in analysis["post_training_bias_metrics"]["facets"]["gender"]
        for metric in m["metrics"]
    ]
    listed = [
        (m["value_or_threshold"], m["metric"], m["value"]) for m in document["metrics"] if m["stage"] == "post_training"
    ]
    assert listed == written
    assert document["files"]["analysis"] == str(out / "analysis.json")
    assert document["files"]["report"] == str(out / "report.html") and (out / "report.html").is_file()
    cli = json.loads((SCHEMAS / "monitor-bias.v1.json").read_text())["$defs"]["violation"]
    file_schema = json.loads((SCHEMAS.parent / "monitor" / "bias_violations.schema.json").read_text())
    assert cli == file_schema["properties"]["violations"]["items"]


def test_monitor_explain_json_is_what_it_wrote(digits_bundle: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    data = tmp_path / "rows.csv"
    pixels = load_digits().data[:12]
    data.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in [range(64), *pixels]) + "\n")
    out = tmp_path / "explain"
    done = shipyard(
        "monitor", "explain", str(digits_bundle), str(data), "--rows", "4", "--samples", "30", "--baseline", "2",
        "--logit", "--out", str(out), "--output", "json",
    )  # fmt: skip
    assert done.returncode == 2 and "--logit: the logit needs model outputs strictly between 0 and 1" in done.stderr
    done = shipyard(
        "monitor", "explain", str(digits_bundle), str(data), "--rows", "4", "--samples", "30", "--baseline", "2",
        "--out", str(out), "--output", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = parse(done, "monitor-explain.v1.json")
    assert document["schema"] == "shipyard.monitor-explain/1"
    assert (document["rows"], document["labels"], document["features"][:2]) == (4, ["label0"], ["0", "1"])
    settings = {"num_samples": 30, "baseline_rows": 2, "agg_method": "mean_abs", "use_logit": False, "seed": 0}
    assert document["shap"] == settings
    written = json.loads((out / "analysis.json").read_text())
    assert document["explanations"] == written["explanations"]
    assert document["files"] == {
        "analysis": str(out / "analysis.json"),
        "local": str(out / "explanations_shap" / "out.csv"),
        "baseline": str(out / "explanations_shap" / "baseline.csv"),
        "plot": str(out / "global_shap.png"),
        "report": str(out / "report.html"),
    }
    assert (out / "report.html").is_file()


def test_monitor_checks_violation_schema_is_the_violation_files_own() -> None:
    """`monitor check --output json` lists the entries of constraint_violations.json: one definition, kept equal."""
    file_schema = json.loads((SCHEMAS.parent / "monitor" / "constraint_violations.schema.json").read_text())
    entry = file_schema["properties"]["violations"]["items"]
    cli = json.loads((SCHEMAS / "monitor-check.v1.json").read_text())["$defs"]["violation"]
    assert {k: v for k, v in cli.items() if k != "description"} == {
        k: v for k, v in entry.items() if k != "description"
    }


def test_monitor_checks_clarify_violation_schemas_are_the_files_own() -> None:
    """The bias and explain sections of `monitor check --output json` list the entries of their
    constraint_violations.json (docs/monitor/clarify_constraint_violations.schema.json): kept equal. The
    sections themselves are checked on real traffic in tests/monitor/test_bias_monitoring.py."""
    file_schema = json.loads((SCHEMAS.parent / "monitor" / "clarify_constraint_violations.schema.json").read_text())
    cli = json.loads((SCHEMAS / "monitor-check.v1.json").read_text())["$defs"]
    assert cli["bias_drift_violation"] == file_schema["$defs"]["bias_drift"]
    assert cli["attribution_drift_violation"] == file_schema["$defs"]["attribution_drift"]


def test_status_health_matches_its_schema_and_null_is_allowed() -> None:
    """``status NAME --output json``'s ``health`` (a real document from a sagemaker deployment against moto is
    validated in tests/deploy/test_alarms.py); here the shape of each field, and that a wrong state fails."""
    from shipyard.cli.status import health_json
    from shipyard.deploy.base import AlarmState, Health

    schema = json.loads((SCHEMAS / "status.v1.json").read_text())
    health = Health(
        window="last hour",
        alarms=[AlarmState("shipyard-d-ModelLatency", "ModelLatency", "ALARM", "Threshold Crossed", "p99 > 50 ms")],
        invocations=40.0,
        p99_ms=250.0,
        extra={"model_setup_p99_ms": None},
        notes=["a note"],
    )
    document = {"schema": "shipyard.status/1", "state_file": "s", "prices": "p", "deployments": []}
    jsonschema.validate({**document, "health": health_json(health)}, schema)
    jsonschema.validate({**document, "health": None}, schema)
    wrong = health_json(health)
    wrong["alarms"][0]["state"] = "RED"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "health": wrong}, schema)


def test_transform_json_names_each_file_and_its_failure(
    digits_server: Server, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "good.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in digits_rows))
    (data / "bad.csv").write_text("1,2,3\n")
    out = tmp_path / "out"
    done = shipyard(
        "transform", digits_server.url, "--input", str(data), "--output", str(out), "--max-payload-mb", "1", "--json"
    )
    assert done.returncode == 3, done.stderr  # a failed file fails the job, after the document
    document = parse(done, "transform.v1.json")
    assert (document["target"], document["status"], document["records"]) == ("local", "Failed", len(digits_rows))
    assert document["settings"] == {"max_concurrent": 1, "strategy": "MultiRecord", "max_payload_mb": 1}
    files = {f["input"]: f for f in document["files"]}
    assert files["good.csv"]["output"] == str(out / "good.csv.out") and files["good.csv"]["failure"] is None
    assert files["bad.csv"]["output"] is None and files["bad.csv"]["failure"]["status"] == 400
    assert (out / "good.csv.out").read_text().count("\n") == len(digits_rows)
