"""Bias drift and attribution drift as Model Monitor judges them: nDCG (the docs' worked example), the
"worse than the baseline" rule on both sides of the ideal, and the violation files against their schema."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from shipyard.errors import MonitorError
from shipyard.monitor.clarify_drift import (
    attribution_drift_violations,
    bias_config,
    bias_drift_violations,
    explain_config,
    facet_config,
    ndcg,
    read_config,
    write_violations,
)

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "monitor" / "clarify_constraint_violations.schema.json"


def validate(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    return document


def test_ndcg_of_the_docs_worked_example_is_0_69() -> None:
    # AWS's docs: SAT 0.70, GPA 0.50, class rank 0.05 in the baseline; the traffic ranks rank, GPA, SAT
    baseline = {"SAT": 0.70, "GPA": 0.50, "rank": 0.05}
    current = {"rank": 0.60, "GPA": 0.40, "SAT": 0.02}
    best = 0.70 / math.log2(2) + 0.50 / math.log2(3) + 0.05 / math.log2(4)
    got = 0.05 / math.log2(2) + 0.50 / math.log2(3) + 0.70 / math.log2(4)
    assert ndcg(baseline, current) == pytest.approx(got / best)
    assert round(ndcg(baseline, current), 2) == 0.69


def test_ndcg_edge_cases() -> None:
    baseline = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg(baseline, baseline) == 1.0
    assert ndcg(baseline, {"a": 30.0, "b": 20.0, "c": 10.0}) == 1.0  # only the ranking counts
    assert ndcg(baseline, {"a": -3.0, "b": 2.0, "c": 1.0}) == 1.0  # signed (median) values rank by magnitude
    assert ndcg({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 2.0}) == 1.0  # no ranking to lose
    assert ndcg({"a": 1.0}, {"a": 0.5}) == 1.0
    # ties in the traffic rank in the baseline's order: no drift from a tie alone
    assert ndcg(baseline, {"a": 1.0, "b": 1.0, "c": 1.0}) == 1.0
    # a feature the traffic lacks counts as 0 there, one the baseline lacks has no gain
    missing = ndcg(baseline, {"b": 2.0, "c": 1.0})
    assert missing == pytest.approx((2 / 1 + 1 / math.log2(3) + 3 / 2) / (3 + 2 / math.log2(3) + 1 / 2))
    assert ndcg(baseline, {**baseline, "d": 100.0}) < 1.0  # a new top feature pushes the others down
    reversed_order = ndcg(baseline, {"a": 1.0, "b": 2.0, "c": 3.0})
    assert 0 < reversed_order < missing < 1


def bias_document(values: dict[str, float | str | None], facet_value: str = "1") -> dict[str, Any]:
    metrics = []
    for name, value in sorted(values.items()):
        entry: dict[str, Any] = {"name": name, "description": name, "value": value}
        if value is None:
            entry["error"] = "facet set is empty"
        metrics.append(entry)
    facets = {"gender": [{"value_or_threshold": facet_value, "metrics": metrics}]}
    return {
        "version": "1.0",
        "post_training_bias_metrics": {"label": "y", "label_value_or_threshold": "1", "facets": facets},
    }


def judged(baseline: dict[str, Any], current: dict[str, Any], **options: float) -> set[str]:
    return {v["metric_name"] for v in bias_drift_violations(bias_document(baseline), bias_document(current), **options)}


def test_a_difference_is_worse_when_farther_from_zero_on_either_side() -> None:
    # the docs' example: DPPL baseline 0.2; 0.1 is fine, -0.3 is a violation
    assert judged({"DPPL": 0.2}, {"DPPL": 0.1}) == set()
    assert judged({"DPPL": 0.2}, {"DPPL": -0.3}) == {"DPPL"}
    assert judged({"DPPL": 0.2}, {"DPPL": -0.2}) == set()  # as far as the baseline, the other way
    assert judged({"DPPL": 0.2}, {"DPPL": 0.21}) == {"DPPL"}
    assert judged({"DPPL": -0.2}, {"DPPL": 0.3}) == {"DPPL"}
    assert judged({"DPPL": -0.2}, {"DPPL": -0.1}) == set()
    assert judged({"AD": 0.0, "RD": 0.05}, {"AD": 1e-15, "RD": 0.05 + 1e-15}) == set()  # float noise
    assert judged({"DPPL": 0.02}, {"DPPL": 0.07}, tolerance=0.1) == set()
    assert judged({"DPPL": 0.02}, {"DPPL": 0.13}, tolerance=0.1) == {"DPPL"}


def test_disparate_impact_is_worse_when_farther_from_one() -> None:
    assert judged({"DI": 0.9}, {"DI": 0.95}) == set()
    assert judged({"DI": 0.9}, {"DI": 1.05}) == set()
    assert judged({"DI": 0.9}, {"DI": 1.1}) == set()  # 0.1 from 1 either way
    assert judged({"DI": 0.9}, {"DI": 0.8}) == {"DI"}
    assert judged({"DI": 0.9}, {"DI": 1.2}) == {"DI"}
    assert judged({"DI": 1.0}, {"DI": 1.0}) == set()
    assert judged({"DI": 1.1}, {"DI": 0.85}) == {"DI"}
    # inf: worse than any finite baseline; an infinite baseline allows anything; errors are not judged
    assert judged({"DI": 0.9}, {"DI": "Infinity"}) == {"DI"}
    assert judged({"DI": "Infinity"}, {"DI": 5.0}) == set()
    assert judged({"DI": 0.9, "TE": 0.1}, {"DI": None, "TE": 0.1}) == set()
    assert judged({"DI": None}, {"DI": 0.1}) == set()


def test_only_the_same_facet_value_and_metric_are_compared() -> None:
    baseline = bias_document({"DPPL": 0.0}, facet_value="1")
    assert bias_drift_violations(baseline, bias_document({"DPPL": 0.5}, facet_value="0")) == []
    assert bias_drift_violations(baseline, bias_document({"DCR": 0.5}, facet_value="1")) == []
    pre = {"version": "1.0", "pre_training_bias_metrics": baseline["post_training_bias_metrics"]}
    assert bias_drift_violations(pre, bias_document({"DPPL": 0.5})) == []


def test_only_the_banded_metrics_are_judged_by_default() -> None:
    # CI, TE, KL…: no default band, no standard error; judged only when named
    assert judged({"CI": 0.0, "TE": 0.1, "DPPL": 0.0}, {"CI": 0.5, "TE": 3.0, "DPPL": 0.0}) == set()
    both = bias_drift_violations(
        bias_document({"CI": 0.0, "TE": 0.1}), bias_document({"CI": 0.5, "TE": 3.0}), metrics=["TE"]
    )
    assert {v["metric_name"] for v in both} == {"TE"}


def test_bias_drift_violation_file(tmp_path: Path) -> None:
    record: dict[str, Any] = {}
    found = bias_drift_violations(
        bias_document({"DPPL": 0.01, "DI": 0.97, "CI": 0.0}),
        bias_document({"DPPL": -0.25, "DI": "-Infinity", "CI": 0.0751544567666083}),
        metrics=["CI", "DI", "DPPL"],
        record=record,
    )
    path = write_violations(tmp_path / "constraint_violations.json", found)
    document = validate(path)
    assert document["version"] == "1.0"
    by_name = {v["metric_name"]: v for v in document["violations"]}
    assert set(by_name) == {"CI", "DI", "DPPL"}
    # Model Monitor's own example, word for word
    assert by_name["CI"]["description"] == "Value 0.0751544567666083 does not meet the constraint requirement"
    assert {k: by_name["CI"][k] for k in ("facet", "facet_value", "constraint_check_type")} == {
        "facet": "gender",
        "facet_value": "1",
        "constraint_check_type": "bias_drift_check",
    }
    assert by_name["DI"]["description"] == "Value -Infinity does not meet the constraint requirement"
    # exactly Model Monitor's keys; the values judged are in the record (drift.json)
    keys = {"facet", "facet_value", "metric_name", "constraint_check_type", "description"}
    assert all(set(v) == keys for v in document["violations"])
    past = {v["metric_name"]: v for v in record["past_the_edge"]}
    assert past["DPPL"]["baseline_value"] == 0.01 and past["DPPL"]["value"] == -0.25
    assert past["DI"]["value"] == "-Infinity" and all(v["violation"] for v in past.values())
    # AWS's readers parse the number out of the sentence
    number = re.search(r"Value (.+) does not meet", by_name["DPPL"]["description"])
    assert number is not None and float(number.group(1)) == -0.25


def shap_document(values: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                label: {"global_shap_values": features, "expected_value": 0.5} for label, features in values.items()
            }
        },
    }


def test_attribution_drift_violation_file(tmp_path: Path) -> None:
    baseline = shap_document({"label0": {"SAT": 0.70, "GPA": 0.50, "rank": 0.05}, "label1": {"SAT": 1.0, "GPA": 0.1}})
    current = shap_document({"label0": {"SAT": 0.02, "GPA": 0.40, "rank": 0.60}, "label1": {"SAT": 0.9, "GPA": 0.2}})
    found = attribution_drift_violations(baseline, current)
    assert [v["label"] for v in found] == ["label0"]  # label1 keeps its ranking
    path = write_violations(tmp_path / "constraint_violations.json", found)
    (entry,) = validate(path)["violations"]
    assert entry["metric_name"] == "shap" and entry["constraint_check_type"] == "feature_attribution_drift_check"
    score = re.fullmatch(r"Feature attribution drift (.+) exceeds threshold 0\.9", entry["description"])
    expected = ndcg({"SAT": 0.7, "GPA": 0.5, "rank": 0.05}, {"rank": 1, "GPA": 0.5, "SAT": 0.1})
    assert score is not None and float(score.group(1)) == pytest.approx(expected)
    assert attribution_drift_violations(baseline, current, threshold=0.6) == []
    assert attribution_drift_violations(baseline, baseline) == []
    validate(write_violations(tmp_path / "none.json", []))


def test_the_schema_refuses_what_model_monitor_would_not_write(tmp_path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    good = {"facet": "g", "facet_value": "1", "metric_name": "DI", "constraint_check_type": "bias_drift_check",
            "description": "Value 0.5 does not meet the constraint requirement"}  # fmt: skip
    jsonschema.validate({"version": "1.0", "violations": [good]}, schema)
    for bad in (
        {**good, "constraint_check_type": "baseline_drift_check"},
        {**good, "description": "Value 0,5 does not meet the constraint requirement"},
        {k: v for k, v in good.items() if k != "facet"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"version": "1.0", "violations": [bad]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"violations": [good]}, schema)  # Clarify's files carry the version


def test_monitoring_analysis_configs_in_clarifys_layout(tmp_path: Path) -> None:
    assert facet_config("gender") == {"name_or_index": "gender"}
    assert facet_config("gender=female,other") == {"name_or_index": "gender", "value_or_threshold": ["female", "other"]}
    assert facet_config("gender=1") == {"name_or_index": "gender", "value_or_threshold": [1]}
    assert facet_config("age>40") == {"name_or_index": "age", "value_or_threshold": [40]}
    config = bias_config(
        headers=["age", "gender", "y"], features=["age", "gender"], label="y", facets=["gender=1", "age>40"],
        positive=["1"], predicted=None, group_by="region", probability_threshold=0.6, bundle=None,
    )  # fmt: skip
    assert {k: config[k] for k in ("version", "headers", "label", "label_values_or_threshold", "group_variable")} == {
        "version": "1.0",
        "headers": ["age", "gender", "y"],
        "label": "y",
        "label_values_or_threshold": [1],
        "group_variable": "region",
    }
    assert config["facet"] == [
        {"name_or_index": "gender", "value_or_threshold": [1]},
        {"name_or_index": "age", "value_or_threshold": [40]},
    ]
    assert config["methods"] == {"post_training_bias": {"methods": "all"}}
    assert config["probability_threshold"] == 0.6
    assert config["shipyard"]["facets"] == ["gender=1", "age>40"]  # redone exactly as given
    (tmp_path / "bias.json").write_bytes(orjson.dumps(config))
    assert read_config(tmp_path / "bias.json") == config

    shap = explain_config(
        features=["a", "b"], baseline=[[0.5, 1.0]], samples=64, agg="mean_abs", use_logit=False, seed=3,
        label_headers=["p"], bundle=tmp_path / "bundle", max_rows=100,
    )  # fmt: skip
    assert shap["headers"] == ["a", "b"]
    assert shap["methods"]["shap"] == {
        "baseline": [[0.5, 1.0]],
        "num_samples": 64,
        "agg_method": "mean_abs",
        "use_logit": False,
        "save_local_shap_values": True,
        "seed": 3,
    }
    assert shap["predictor"]["label_headers"] == ["p"]
    (tmp_path / "not.json").write_bytes(b'{"version": "1.0"}')
    with pytest.raises(MonitorError, match=r"not a Clarify analysis_config\.json"):
        read_config(tmp_path / "not.json")


def test_the_join_keeps_requests_answers_and_labels_row_by_row(tmp_path: Path) -> None:
    """Multi-row CSV requests and JSON records, interleaved in one file: every kept row of the request lines
    up with its prediction and its label; a request whose rows do not match its labels is skipped."""
    from monitor_helpers import T0, write_capture

    from shipyard.monitor.joined import join_capture
    from shipyard.monitor.problems import Problems
    from shipyard.monitor.sources import Span

    root = tmp_path / "capture"
    labels: dict[str, list[Any]] = {}
    for i in range(12):
        key = f"r{i}"
        if i % 2:  # one JSON record: a = i, b = -i
            body = orjson.dumps({"a": i, "b": -i})
            answer = orjson.dumps({"predictions": [i * 10]})
            content_type, labels[key] = "application/json", [i * 100]
        else:  # three CSV rows: a = i, i + 0.25, i + 0.5
            body = "".join(f"{i + d},{-(i + d)}\n" for d in (0, 0.25, 0.5)).encode()
            answer = orjson.dumps({"predictions": [i * 10, i * 10 + 1, i * 10 + 2]})
            content_type, labels[key] = "text/csv", [i * 100, i * 100 + 1, i * 100 + 2]
        write_capture(root, [(T0 + i, content_type, body)], answer=answer, inference_ids=[key])
    labels["r4"] = [1, 2]  # two labels for three predictions: skipped
    body = b"1,1\n2,2\n3,3\n"  # three rows, two predictions and two labels: skipped too
    write_capture(root, [(T0 + 20, "text/csv", body)], answer=b'{"predictions": [1, 2]}', inference_ids=["r12"])
    labels["r12"] = [1, 2]
    problems = Problems()
    joined = join_capture(root, labels, Span(None, None, None), problems, names=["a", "b"], inputs=True)
    columns = joined.columns()
    assert joined.captured == 13 and joined.matched_records == 11
    assert len(joined.actual) == len(columns["a"]) == 6 * 1 + 5 * 3
    for a, b, predicted, actual in zip(columns["a"], columns["b"], joined.predicted, joined.actual, strict=True):
        assert b == -a
        whole = int(a)
        assert predicted - whole * 10 == actual - whole * 100 == round((a - whole) * 4)
    assert any("r4: 3 predictions but 2 labels" in m for m in problems.summary())
    assert any("r12: 3 request rows but 2 labels" in m for m in problems.summary())


def test_the_rows_explained_are_a_seeded_bounded_sample(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from monitor_helpers import T0, write_capture

    from shipyard.monitor import sources
    from shipyard.monitor.columns import sample_rows
    from shipyard.monitor.problems import Problems

    n = 3000
    pq.write_table(
        pa.table({"a": np.arange(n, dtype=float), "b": -np.arange(n), "c": ["x"] * n}), tmp_path / "d.parquet"
    )
    rows, seen = sample_rows(tmp_path / "d.parquet", ["b", "a"], 200, seed=3, problems=Problems())
    assert seen == n and rows.shape == (200, 2)
    assert np.array_equal(rows[:, 0], -rows[:, 1]) and np.all(np.diff(rows[:, 1]) > 0)  # the source's order
    assert 1000 < rows[:, 1].mean() < 2000  # spread over the whole file, not its first rows
    again, _ = sample_rows(tmp_path / "d.parquet", ["b", "a"], 200, seed=3, problems=Problems())
    assert np.array_equal(rows, again)
    assert not np.array_equal(
        rows, sample_rows(tmp_path / "d.parquet", ["b", "a"], 200, seed=4, problems=Problems())[0]
    )
    whole, _ = sample_rows(tmp_path / "d.parquet", ["a"], 5000, problems=Problems())
    assert np.array_equal(whole[:, 0], np.arange(n))
    # captured CSV requests, read in many small blocks: the sample never holds more than the limit
    body = [(T0 + i, "text/csv", f"{i},{-i}".encode()) for i in range(n)]
    write_capture(tmp_path / "capture", body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "BLOCK_BYTES", 4096)
        rows, seen = sample_rows(tmp_path / "capture", ["a", "b"], 100, seed=1, problems=Problems())
    assert seen == n and rows.shape == (100, 2) and np.array_equal(rows[:, 0], -rows[:, 1])
    with pytest.raises(MonitorError, match="SHAP values need numeric features"):
        sample_rows(tmp_path / "d.parquet", ["c"], 10, problems=Problems())
