"""Model quality with planted label noise, our files against the documented JSON Schemas, the HTML report,
and bad input (corrupt lines, a wrong encoding, an empty window): clear messages, the rest still read."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest
from monitor_helpers import T0, Captured, Digits, records_payloads, write_capture
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import MonitorError
from shipyard.monitor import make_baseline, run_check
from shipyard.monitor.quality import run_quality

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "monitor"


def validate(path: Path, schema: str) -> None:
    document = orjson.loads(path.read_bytes())
    jsonschema.validate(document, json.loads((SCHEMAS / f"{schema}.schema.json").read_text()))


def noisy_labels(captured: Captured, digits: Digits, path: Path, every: int = 10) -> dict[str, int]:
    """True labels for every captured request, every ``every``-th one flipped; half in SageMaker's format."""
    truth: dict[str, int] = {}
    lines = []
    for index in range(len(digits.y_test)):
        key = f"same-{index}"
        label = int(digits.y_test[index])
        if index % every == 0:
            label = (label + 1) % 10  # planted noise
        truth[key] = label
        if index % 2:
            lines.append(
                {
                    "groundTruthData": {"data": str(label), "encoding": "CSV"},
                    "eventMetadata": {"eventId": key},
                    "eventVersion": "0",
                }
            )
        else:
            lines.append({"inference_id": key, "label": label})
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return truth


@pytest.mark.integration
def test_quality_with_planted_label_noise(digits_capture: Captured, digits: Digits, tmp_path: Path) -> None:
    truth = noisy_labels(digits_capture, digits, tmp_path / "labels.jsonl")
    expected = np.mean([digits_capture.predictions[k] == truth[k] for k in digits_capture.ids])
    result = run_quality(digits_capture.root, tmp_path / "labels.jsonl", tmp_path / "out", thresholds={"accuracy": 0.5})
    assert result.document["join"]["matched_rows"] == len(digits.y_test)
    assert result.metrics["accuracy"] == pytest.approx(expected)
    assert 0.75 < result.metrics["accuracy"] < 0.9  # ~95 % model accuracy, 10 % of the labels flipped
    assert result.violations == []
    matrix = result.document["multiclass_classification_metrics"]["confusion_matrix"]
    assert sum(sum(row.values()) for row in matrix.values()) == len(digits.y_test)
    validate(tmp_path / "out" / "quality.json", "quality")
    # a threshold above what the noisy labels allow: a violation, and exit code 3 from the CLI
    runner = CliRunner()
    strict = runner.invoke(
        app,
        [
            "monitor",
            "quality",
            str(digits_capture.root),
            "-g",
            str(tmp_path / "labels.jsonl"),
            "-o",
            str(tmp_path / "cli"),
            "-t",
            "accuracy=0.95",
        ],
    )
    assert strict.exit_code == 3, strict.output
    validate(tmp_path / "cli" / "quality_violations.json", "quality_violations")
    violations = orjson.loads((tmp_path / "cli" / "quality_violations.json").read_bytes())["violations"]
    assert {v["metric_name"] for v in violations} == {"accuracy"}
    assert violations[0]["constraint_check_type"] == "LessThanThreshold"


def test_regression_metrics_and_windows(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    payloads, labels = [], []
    answers = []
    for i in range(400):
        truth = float(rng.normal(10, 3))
        error = rng.normal(0, 0.5 if i < 200 else 2.0)  # the second hour is worse
        payloads.append((T0 + i * 18.0, "application/json", b'{"x": 1}'))
        answers.append(orjson.dumps({"predictions": [truth + error]}))
        labels.append({"inference_id": f"r{i}", "label": truth})
    for index, payload in enumerate(payloads):
        write_capture(tmp_path / "capture", [payload], answer=answers[index], inference_ids=[f"r{index}"])
    (tmp_path / "labels.jsonl").write_bytes(b"\n".join(orjson.dumps(x) for x in labels))
    result = run_quality(tmp_path / "capture", tmp_path / "labels.jsonl", tmp_path / "out", thresholds={"rmse": 1.0})
    assert result.document["problem_type"] == "regression"
    first, second = result.document["windows"]
    assert first["metrics"]["rmse"] < 0.7 < 1.5 < second["metrics"]["rmse"]
    assert [v["description"].endswith("(overall)") or "window" in v["description"] for v in result.violations]
    assert {v["constraint_check_type"] for v in result.violations} == {"GreaterThanThreshold"}
    assert len(result.violations) == 2  # overall and the second window


@pytest.mark.integration
def test_files_match_the_documented_schemas(
    digits_capture: Captured, shifted_capture: Captured, digits_baseline: Path, tmp_path: Path
) -> None:
    validate(digits_baseline / "statistics.json", "statistics")
    validate(digits_baseline / "constraints.json", "constraints")
    run_check(shifted_capture.root, digits_baseline, tmp_path)
    for name in ("constraint_violations", "drift", "statistics"):
        validate(tmp_path / f"{name}.json", name)
    record = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "capture_record.schema.json").read_text()))
    lines = [line for path in digits_capture.root.rglob("*.jsonl") for line in path.read_bytes().splitlines()]
    assert len(lines) == len(digits_capture.ids)
    for line in lines:
        record.validate(orjson.loads(line))


@pytest.mark.integration
def test_report_is_one_self_contained_page(
    shifted_capture: Captured, digits: Digits, digits_baseline: Path, tmp_path: Path, digits_capture: Captured
) -> None:
    run_check(shifted_capture.root, digits_baseline, tmp_path)
    noisy_labels(digits_capture, digits, tmp_path / "labels.jsonl")
    run_quality(digits_capture.root, tmp_path / "labels.jsonl", tmp_path)
    result = CliRunner().invoke(app, ["monitor", "report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(list((tmp_path / "report").glob("*.png"))) >= 4
    assert 'src="http' not in page and "<script" not in page  # nothing fetched from elsewhere
    for png in (tmp_path / "report").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pixel_20" in page and "Model quality" in page
    assert "3 of 64 features" in result.output  # the terminal summary


def test_bad_input_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    train = {"a": rng.normal(0, 1, 5000).tolist(), "b": rng.normal(0, 1, 5000).tolist()}
    (tmp_path / "train.jsonl").write_bytes(
        b"\n".join(orjson.dumps({"a": a, "b": b}) for a, b in zip(train["a"], train["b"], strict=True))
    )
    make_baseline(tmp_path / "train.jsonl", tmp_path / "baseline")
    current = {"a": rng.normal(0, 1, 2000).tolist(), "b": rng.normal(0, 1, 2000).tolist()}
    write_capture(tmp_path / "capture", records_payloads(current, T0))
    path = next((tmp_path / "capture").rglob("*.jsonl"))
    lines = path.read_bytes().splitlines()
    lines[10] = lines[10][:40]  # a truncated record
    lines[20] = b"\xff\xfe not utf-8 \x80"  # bytes that are not UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")
    (path.parent / "utf16.jsonl").write_bytes(lines[0].decode().encode("utf-16"))  # a wrongly encoded file
    result = run_check(tmp_path / "capture", tmp_path / "baseline", tmp_path / "out")
    assert result.rows == 1998
    assert result.violations == []
    messages = "\n".join(result.problems.summary())
    assert f"{path}:11: not valid JSON" in messages
    assert f"{path}:21: not UTF-8" in messages
    assert "utf16.jsonl: UTF-16 text" in messages
    runner = CliRunner()
    cli = runner.invoke(
        app,
        ["monitor", "check", str(tmp_path / "capture"), "-b", str(tmp_path / "baseline"), "-o", str(tmp_path / "cli")],
    )
    assert cli.exit_code == 0 and "warning" in cli.output and ":11: not valid JSON" in cli.output


def test_an_empty_window_and_a_missing_baseline_are_clear_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = {"a": rng.normal(0, 1, 100).tolist()}
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps({"a": a}) for a in rows["a"]))
    make_baseline(tmp_path / "train.jsonl", tmp_path / "baseline")
    write_capture(tmp_path / "capture", records_payloads(rows, T0))
    with pytest.raises(MonitorError, match=r"no rows to check since .* \(the window is empty\)"):
        run_check(tmp_path / "capture", tmp_path / "baseline", tmp_path / "out", since="1h", now=T0 + 5 * 3600)
    with pytest.raises(MonitorError, match=r"no statistics\.json here"):
        run_check(tmp_path / "capture", tmp_path / "nowhere", tmp_path / "out")
    result = CliRunner().invoke(
        app, ["monitor", "check", str(tmp_path / "capture"), "-b", str(tmp_path / "baseline"), "--since", "yesterday"]
    )
    assert result.exit_code != 0
    assert "give a duration" in str(result.exception) + result.output
