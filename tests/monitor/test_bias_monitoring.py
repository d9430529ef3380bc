"""Bias drift and attribution drift after launch, end to end: a tabular model with a ``gender`` input served by
a real server with data capture, a baseline with ``--bias --explain``, then ``check`` on captured traffic and
ground truth — traffic like the baseline passes, a planted disparity is a ``bias_drift_check`` (exit 3), and
traffic whose feature importance ranking changes is a ``feature_attribution_drift_check``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import shipyard
from infra.cli import shipyard as console
from shipyard.cli import app
from shipyard.errors import MonitorError
from shipyard.monitor import run_check
from shipyard.monitor.baseline import BiasOptions, make_baseline

pytestmark = pytest.mark.integration

FEATURES = ["gender", "x1", "x2"]
ROWS = 600
DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass
class Traffic:
    capture: Path
    labels: Path
    rows: np.ndarray


def rounded(rows: np.ndarray) -> np.ndarray:
    """Values as a CSV request writes them (``%g``), so the baseline's rows and the captured ones are equal."""
    return np.vectorize(lambda v: float(f"{v:g}"))(rows)


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """gender (0/1, no effect on the label), x1 (3x the weight of x2), x2; the label."""
    rows = np.column_stack([rng.integers(0, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n)]).astype(float)
    rows = rounded(rows)
    y = (3 * rows[:, 1] + rows[:, 2] + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    return rows, y


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    rows, y = draw(np.random.default_rng(1), 3000)
    path = tmp_path_factory.mktemp("tabular") / "bundle"
    fitted = LogisticRegression().fit(rows, y)
    shipyard.save(fitted, path, example=rows[:5], feature_names=FEATURES, method="predict_proba", name="credit")
    return path


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    rows, y = draw(np.random.default_rng(2), ROWS)
    path = tmp_path_factory.mktemp("train") / "train.parquet"
    table = {"gender": rows[:, 0].astype(np.int64), "x1": rows[:, 1], "x2": rows[:, 2], "y": y}
    pq.write_table(pa.table(table), path)
    return path, rows, y


@pytest.fixture(scope="module")
def baseline(
    model: Path, training: tuple[Path, np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "baseline"
    command = ["monitor", "baseline", str(training[0]), "--schema", str(model), "-o", str(out)]
    command += ["--bias", "--label", "y", "--facet", "gender=1", "--bundle", str(model)]
    done = CliRunner().invoke(app, [*command, "--explain", "--shap-baseline", "1", "--explain-rows", "150"])
    assert done.exit_code == 0, done.output
    assert "bias baseline" in done.output and "SHAP baseline" in done.output
    return out


def send(url: str, rows: np.ndarray, prefix: str) -> None:
    """Each row as one CSV request with an inference id, 16 at a time."""

    def one(client: httpx.Client, index: int) -> None:
        body = ",".join(f"{v:g}" for v in rows[index]).encode()
        headers = {"Content-Type": "text/csv", "Accept": "application/json"}
        answer = client.post(
            f"{url}/invocations",
            content=body,
            headers={**headers, "X-Amzn-SageMaker-Inference-Id": f"{prefix}-{index}"},
        )
        assert answer.status_code == 200, answer.text

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: one(client, i), range(len(rows))))


def serve(servers: Any, model: Path, root: Path, rows: np.ndarray, y: np.ndarray, prefix: str) -> Traffic:
    """``rows`` sent to a real server with data capture; the ground truth ``y`` written by inference id."""
    server = servers(
        model, env={"SHIPYARD_CAPTURE_DESTINATION": str(root / "capture"), "SHIPYARD_CAPTURE_PERCENT": "100"}
    )
    send(server.url, rows, prefix)
    assert server.stop() == 0
    labels = root / "labels.jsonl"
    labels.write_bytes(
        b"\n".join(orjson.dumps({"inference_id": f"{prefix}-{i}", "label": int(v)}) for i, v in enumerate(y)) + b"\n"
    )
    return Traffic(root / "capture", labels, rows)


@pytest.fixture(scope="module")
def like_baseline(
    session_servers: Any,
    model: Path,
    training: tuple[Path, np.ndarray, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> Traffic:
    """The baseline's own rows and labels, as live traffic (in the order the server captured them)."""
    _, rows, y = training
    return serve(session_servers, model, tmp_path_factory.mktemp("same"), rows, y, "same")


@pytest.fixture(scope="module")
def disparity(
    session_servers: Any,
    model: Path,
    training: tuple[Path, np.ndarray, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> Traffic:
    """The same rows with x1 lowered by 1.5 for gender 1: the model now turns down far more of them."""
    _, rows, y = training
    rows = rows.copy()
    rows[rows[:, 0] == 1, 1] -= 1.5
    return serve(session_servers, model, tmp_path_factory.mktemp("disparity"), rounded(rows), y, "disparity")


@pytest.fixture(scope="module")
def reranked(
    session_servers: Any,
    model: Path,
    training: tuple[Path, np.ndarray, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> Traffic:
    """x1 (the most important feature in training) held at 0 and x2 spread 4x: x2 now matters most."""
    _, rows, y = training
    rows = rows.copy()
    rows[:, 1] = 0.0
    rows[:, 2] *= 4
    return serve(session_servers, model, tmp_path_factory.mktemp("reranked"), rounded(rows), y, "reranked")


def clarify_violations(path: Path) -> list[dict[str, Any]]:
    document = orjson.loads(path.read_bytes())
    jsonschema.validate(
        document, json.loads((DOCS / "monitor" / "clarify_constraint_violations.schema.json").read_text())
    )
    violations: list[dict[str, Any]] = document["violations"]
    return violations


def test_the_baseline_writes_clarifys_files_next_to_the_statistics(
    baseline: Path, model: Path, training: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    assert (baseline / "statistics.json").is_file() and (baseline / "constraints.json").is_file()
    statistics = orjson.loads((baseline / "statistics.json").read_bytes())
    assert [f["name"] for f in statistics["features"]] == FEATURES  # the label is not a feature
    config = orjson.loads((baseline / "bias" / "analysis_config.json").read_bytes())
    assert config["label"] == "y" and config["facet"] == [{"name_or_index": "gender", "value_or_threshold": [1]}]
    assert config["methods"] == {"post_training_bias": {"methods": "all"}} and config["headers"] == [*FEATURES, "y"]
    analysis = orjson.loads((baseline / "bias" / "analysis.json").read_bytes())
    (entry,) = analysis["post_training_bias_metrics"]["facets"]["gender"]
    dppl = next(m["value"] for m in entry["metrics"] if m["name"] == "DPPL")
    assert abs(dppl) < 0.15  # no disparity planted in training
    shap = orjson.loads((baseline / "explain" / "analysis_config.json").read_bytes())
    assert shap["headers"] == FEATURES and len(shap["methods"]["shap"]["baseline"]) == 1
    assert shap["shipyard"]["bundle"] == str(model.resolve())
    explained = orjson.loads((baseline / "explain" / "analysis.json").read_bytes())["explanations"]["kernel_shap"]
    for values in explained.values():
        ranking = sorted(values["global_shap_values"], key=lambda f: -abs(values["global_shap_values"][f]))
        assert ranking == ["x1", "x2", "gender"]
    # the library call does the same; a bias baseline needs predictions, an explain one a bundle
    with pytest.raises(MonitorError, match="needs predictions"):
        make_baseline(training[0], tmp_path / "b", bias=BiasOptions(label="y", facets=["gender=1"]))
    done = CliRunner().invoke(app, ["monitor", "baseline", str(training[0]), "-o", str(tmp_path / "c"), "--explain"])
    assert done.exit_code != 0 and "--explain needs --bundle" in str(done.exception) + done.output


def test_traffic_like_the_baseline_passes(baseline: Path, like_baseline: Traffic, model: Path, tmp_path: Path) -> None:
    result = run_check(like_baseline.capture, baseline, tmp_path, ground_truth=like_baseline.labels, bundle=model)
    assert result.bias is not None and result.bias.skipped is None
    assert result.bias.rows == ROWS  # every captured request joined with its label
    assert result.explain is not None and result.explain.skipped is None
    assert all(score > 0.99 for score in result.explain.scores.values())
    assert result.all_violations == []
    assert clarify_violations(tmp_path / "bias" / "constraint_violations.json") == []
    assert clarify_violations(tmp_path / "explain" / "constraint_violations.json") == []


def test_a_planted_disparity_is_a_bias_drift_violation_and_exit_3(
    baseline: Path, disparity: Traffic, like_baseline: Traffic, tmp_path: Path
) -> None:
    runner = CliRunner()
    command = ["monitor", "check", str(disparity.capture), "-b", str(baseline), "-g", str(disparity.labels)]
    done = runner.invoke(app, [*command, "-o", str(tmp_path / "out")])  # the defaults: no tolerance
    assert done.exit_code == 3, done.output
    assert "bias_drift_check" in done.output
    found = clarify_violations(tmp_path / "out" / "bias" / "constraint_violations.json")
    names = {v["metric_name"] for v in found}
    assert {"DPPL", "DI"} <= names
    assert {(v["facet"], v["facet_value"]) for v in found} == {("gender", "1")}
    keys = {"facet", "facet_value", "metric_name", "constraint_check_type", "description"}
    assert all(set(v) == keys for v in found)  # Model Monitor's keys only
    judged = orjson.loads((tmp_path / "out" / "bias" / "drift.json").read_bytes())["judged"]
    dppl = next(v for v in judged["past_the_edge"] if v["metric_name"] == "DPPL")
    assert dppl["value"] > 0.3 and abs(dppl["baseline_value"]) < 0.15 and dppl["violation"]
    assert dppl["z"] > judged["critical_z"] > 2 and judged["alpha"] == 0.05
    # no bundle given, but the baseline names it: attribution drift ran too
    assert (tmp_path / "out" / "explain" / "analysis.json").is_file()
    # the same traffic without ground truth: bias drift is skipped, and says why
    plain = runner.invoke(
        app, ["monitor", "check", str(like_baseline.capture), "-b", str(baseline), "-o", str(tmp_path / "p")]
    )
    assert plain.exit_code == 0, plain.output
    assert "bias drift skipped" in plain.output and "--ground-truth" in plain.output


def test_a_changed_importance_ranking_is_an_attribution_drift_violation(
    baseline: Path, reranked: Traffic, model: Path, tmp_path: Path
) -> None:
    result = run_check(reranked.capture, baseline, tmp_path, bundle=model)
    assert result.bias is not None and result.bias.skipped is not None  # no ground truth given
    assert result.explain is not None
    found = clarify_violations(tmp_path / "explain" / "constraint_violations.json")
    assert found and {v["constraint_check_type"] for v in found} == {"feature_attribution_drift_check"}
    assert all(score < 0.9 for score in result.explain.scores.values())
    current = orjson.loads((tmp_path / "explain" / "analysis.json").read_bytes())["explanations"]["kernel_shap"]
    for values in current.values():
        assert max(values["global_shap_values"], key=lambda f: abs(values["global_shap_values"][f])) == "x2"


def test_check_json_has_the_new_sections_and_the_report_draws_them(
    baseline: Path, disparity: Traffic, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = console(
        "monitor", "check", str(disparity.capture), "-b", str(baseline), "-g", str(disparity.labels),
        "--bundle", str(model), "-o", str(out), "--output", "json",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((DOCS / "schemas" / "monitor-check.v1.json").read_text()))
    assert document["passed"] is False
    assert document["bias"]["ran"] and not document["bias"]["passed"]
    on_disk = orjson.loads((out / "bias" / "constraint_violations.json").read_bytes())["violations"]
    assert document["bias"]["violations"] == on_disk
    assert document["explain"]["ran"] and set(document["explain"]["ndcg"]) == {"label0", "label1"}

    report = CliRunner().invoke(app, ["monitor", "report", str(out)])
    assert report.exit_code == 0, report.output
    page = (out / "report.html").read_text()
    assert "Bias drift" in page and "Facet gender = 1" in page and "DPPL" in page
    assert "Feature attribution drift" in page and "nDCG" in page
    assert (out / "report" / "shap_label1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Data drift" in page  # next to the data-drift section, in one page


def test_the_report_of_a_baseline_and_of_standalone_results(
    baseline: Path, training: tuple[Path, np.ndarray, np.ndarray], model: Path, tmp_path: Path
) -> None:
    # a baseline directory's bias/ and explain/ parts: the metrics with their threshold bands, the SHAP bars
    done = CliRunner().invoke(app, ["monitor", "report", str(baseline), "-o", str(tmp_path / "base.html")])
    assert done.exit_code == 0, done.output
    page = (tmp_path / "base.html").read_text()
    assert "<h2>Bias</h2>" in page and "[0.8, 1.25]" in page  # DI's four-fifths band
    assert "Explainability (global SHAP values)" in page
    # `monitor bias --out DIR` and `monitor explain --out DIR` results: analysis.json at the top
    from shipyard.monitor.bias import run_bias
    from shipyard.monitor.explain import run_explain

    run_bias(training[0], tmp_path / "bias", label="y", facets=["gender=1"], bundle=model)
    run_explain(model, training[0], tmp_path / "explain", max_rows=50)
    for name, heading in (("bias", "<h2>Bias</h2>"), ("explain", "Explainability")):
        done = CliRunner().invoke(app, ["monitor", "report", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
        assert heading in (tmp_path / name / "report.html").read_text()


def test_parts_that_cannot_run_say_why(
    baseline: Path, training: tuple[Path, np.ndarray, np.ndarray], like_baseline: Traffic, tmp_path: Path
) -> None:
    import shutil

    # a data file is not captured traffic: no answers to join with labels
    result = run_check(training[0], baseline, tmp_path / "a", ground_truth=like_baseline.labels)
    assert result.bias is not None and result.bias.skipped is not None and "not captured traffic" in result.bias.skipped
    assert result.explain is not None and result.explain.skipped is None  # the baseline's bundle explains it
    # the bundle the baseline names is gone, and none is given: attribution drift is skipped, data drift runs
    moved = tmp_path / "baseline"
    shutil.copytree(baseline, moved)
    config = orjson.loads((moved / "explain" / "analysis_config.json").read_bytes())
    config["shipyard"]["bundle"] = str(tmp_path / "gone")
    (moved / "explain" / "analysis_config.json").write_bytes(orjson.dumps(config))
    result = run_check(like_baseline.capture, moved, tmp_path / "b")
    assert result.explain is not None and result.explain.skipped is not None
    assert "no bundle (--bundle)" in result.explain.skipped and "gone is not there" in result.explain.skipped
    assert result.violations == [] and not (tmp_path / "b" / "explain").exists()
