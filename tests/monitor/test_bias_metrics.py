"""Bias metrics on hand counts (empty groups, 0/0, inf, both inf, KL < 0), Clarify's grouping rules, the
analysis.json helpers and schema, and the thresholds: a planted disparity is found, 100 fair data sets are not."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from bias_helpers import planted, write

from shipyard.errors import MonitorError
from shipyard.monitor import bias_metrics as bm
from shipyard.monitor.bias import DEFAULT_THRESHOLDS, bias_analysis, bias_violations, run_bias
from shipyard.monitor.clarify import DESCRIPTIONS, metric_entry, metric_value, read_analysis
from shipyard.monitor.groups import (
    CATEGORICAL,
    CONTINUOUS,
    FacetSpec,
    column_type,
    facet_groups,
    label_mask,
    parse_facet,
    predicted_mask,
)
from shipyard.monitor.problems import ArgumentError, Problems

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "monitor"


def counts(a: dict[tuple[int, int], int], d: dict[tuple[int, int], int]) -> bm.Counts:
    """``{(y, p): rows}`` of group a and group d."""
    n = np.zeros((2, 2, 2), np.int64)
    for group, cells in ((0, a), (1, d)):
        for (y, p), rows in cells.items():
            n[group, y, p] = rows
    return bm.Counts(n)


def test_hand_counts() -> None:
    # a: 10 rows, 6 positive labels (4 predicted right, 2 missed), 4 negatives (1 false positive)
    # d: 5 rows, 1 positive label (predicted), 4 negatives (none predicted positive)
    c = counts({(1, 1): 4, (1, 0): 2, (0, 1): 1, (0, 0): 3}, {(1, 1): 1, (0, 0): 4})
    pre = bm.pre_training(c)
    assert pre["CI"] == pytest.approx((10 - 5) / 15)
    assert pre["DPL"] == pytest.approx(0.6 - 0.2)
    assert pre["KL"] == pytest.approx(0.4 * math.log(0.4 / 0.8) + 0.6 * math.log(0.6 / 0.2))
    assert pre["KS"] == pytest.approx(0.4) and pre["TVD"] == pytest.approx(0.4)
    assert pre["LP"] == pytest.approx(math.sqrt(2) * 0.4)
    post = bm.post_training(c)
    assert post["DPPL"] == pytest.approx(5 / 10 - 1 / 5)
    assert post["DI"] == pytest.approx((1 / 5) / (5 / 10))
    assert post["DCA"] == pytest.approx(6 / 5 - 1 / 1)  # labels / predicted positives
    assert post["DCR"] == pytest.approx(4 / 4 - 4 / 5)  # negatives / predicted negatives, d − a
    assert post["DAR"] == pytest.approx(4 / 5 - 1 / 1)
    assert post["DRR"] == pytest.approx(4 / 4 - 3 / 5)
    assert post["RD"] == pytest.approx(4 / 6 - 1 / 1)
    assert post["SD"] == pytest.approx(4 / 4 - 3 / 4)
    assert post["AD"] == pytest.approx(7 / 10 - 5 / 5)
    assert post["TE"] == pytest.approx(0 - 2 / 1)  # d: FN 0 / FP 0 = 0 (0/0); a: FN 2 / FP 1
    assert (
        isinstance(post["CDDPL"], bm.Unavailable) and post["CDDPL"].error == "Group variable is empty or not provided"
    )
    assert list(post) == sorted(post) and "FT" not in post


def test_empty_group_errors_are_smclarifys() -> None:
    c = counts({(1, 1): 3, (0, 0): 3}, {})
    pre, post = bm.pre_training(c), bm.post_training(c)
    assert pre["CI"] == bm.Unavailable("CI: facet set is empty. Check that x[facet] has non-zero length.")
    assert pre["DPL"] == bm.Unavailable("Facet set is empty.")
    assert pre["KL"] == bm.Unavailable("No instance of common facet found, dataset may be too small")
    assert post["DI"] == bm.Unavailable("Facet set is empty")
    assert post["DCA"] == bm.Unavailable("DCO: Facet set is empty")
    assert post["RD"] == bm.Unavailable("DLA: Facet set is empty")
    assert post["DAR"] == bm.Unavailable("DLR: Facet set is empty")
    assert post["TE"] == bm.Unavailable("Facet set is empty") and post["AD"] == bm.Unavailable("Facet set is empty")
    other = counts({}, {(1, 1): 3, (0, 0): 3})
    assert bm.pre_training(other)["CI"] == bm.Unavailable(
        "CI: negated facet set is empty. Check that x[~facet] has non-zero length."
    )
    assert bm.pre_training(other)["DPL"] == bm.Unavailable("Negative facet set is empty.")
    assert bm.post_training(other)["DCR"] == bm.Unavailable("DCO: Negated Facet set is empty")


def test_zero_over_zero_inf_and_both_inf() -> None:
    # a: positives but no positive prediction → conditional acceptance n1/n1̂ = inf; d: 0/0 → 0
    c = counts({(1, 0): 5, (0, 0): 5}, {(0, 0): 4, (0, 1): 1})
    post = bm.post_training(c)
    assert post["DCA"] == math.inf  # inf − 0
    assert metric_entry("DCA", post["DCA"])["value"] == "Infinity"  # type: ignore[arg-type]
    assert post["DI"] == math.inf  # q̂_a = 0, q̂_d > 0
    # both inf: a and d both have positive labels and no positive predictions
    both = counts({(1, 0): 5, (0, 0): 5}, {(1, 0): 2, (0, 0): 3})
    assert bm.post_training(both)["DCA"] == 0.0
    assert bm.post_training(both)["TE"] == 0.0  # FN/FP = inf on both sides
    assert bm.post_training(both)["DI"] == 0.0  # 0/0
    assert bm.divide(0, 0) == 0.0 and bm.divide(-1, 0) == -math.inf


def test_kl_below_zero_when_one_group_has_one_label_value() -> None:
    """pdfs_aligned_nonzero keeps the values both groups have and does not renormalise: KL = q_a ln q_a < 0."""
    c = counts({(1, 1): 3, (0, 0): 7}, {(1, 1): 5})
    kl = bm.pre_training(c)["KL"]
    assert isinstance(kl, float) and kl == pytest.approx(0.3 * math.log(0.3)) and kl < 0
    apart = counts({(0, 0): 7}, {(1, 1): 5})  # no label value in common
    assert bm.pre_training(apart)["JS"] == bm.Unavailable("No instance of common facet found, dataset may be too small")


def test_generalized_entropy_and_cdd_by_hand() -> None:
    overall = np.array([[3, 1], [2, 4]])  # [y, p]: b = p − y + 1 → b=0: 2, b=1: 7, b=2: 1
    mean = (7 + 2) / 10
    expected = (2 * (0 - 1) + 7 * ((1 / mean) ** 2 - 1) + 1 * ((2 / mean) ** 2 - 1)) / (10 * 2)
    assert bm.generalized_entropy(overall) == pytest.approx(expected)
    assert isinstance(bm.generalized_entropy(np.array([[0, 0], [5, 0]])), bm.Unavailable)  # all false negatives
    # [d, g, v]: g = 0 missing group (weighs nothing), groups 1 and 2
    table = np.zeros((2, 3, 2), np.int64)
    table[0, 0] = [5, 5]
    table[1, 1] = [2, 1]  # group 1, d: 2 rejected, 1 accepted
    table[0, 1] = [2, 3]  # group 1, a: 2 rejected, 3 accepted
    table[1, 2] = [0, 2]  # group 2, d: 2 accepted
    table[0, 2] = [4, 2]
    d1, a1 = 2 / 4, 1 / 4
    d2, a2 = 0 / 4, 2 / 4
    assert bm.cdd(table) == pytest.approx((8 * (d1 - a1) + 8 * (d2 - a2)) / 16)
    table[:, :, 1] = 0
    assert bm.cdd(table) == bm.Unavailable("No positive labels in set")


def test_count_tables_one_bincount_for_every_group() -> None:
    rng = np.random.default_rng(3)
    codes, y, p = rng.integers(-1, 4, 1000), rng.random(1000) < 0.4, rng.random(1000) < 0.5
    tables = bm.count_tables(codes, 4, y, p)
    for k in range(4):
        d = codes == k
        n = tables.versus(k).n
        for yy in (0, 1):
            for pp in (0, 1):
                assert n[1, yy, pp] == np.sum(d & (y == yy) & (p == pp))
                assert n[0, yy, pp] == np.sum(~d & (y == yy) & (p == pp))


# -- grouping ----------------------------------------------------------------------------------------
def test_parse_facet() -> None:
    assert parse_facet("gender") == FacetSpec("gender")
    assert parse_facet("gender=female,other") == FacetSpec("gender", values=("female", "other"))
    assert parse_facet("age>40") == FacetSpec("age", threshold=40.0)
    with pytest.raises(ArgumentError):
        parse_facet("age>old")
    with pytest.raises(ArgumentError):
        parse_facet("gender=")


def test_typing_rule() -> None:
    rng = np.random.default_rng(0)
    assert column_type(rng.integers(18, 81, 2000)) == CATEGORICAL  # 3% distinct
    assert column_type(rng.integers(18, 81, 1000)) == CONTINUOUS  # 6.3%
    assert column_type(rng.normal(size=10)) == CONTINUOUS
    assert column_type(np.array(["a", "b"] * 50, dtype=object)) == CATEGORICAL
    assert column_type(np.array([str(i) for i in range(100)], dtype=object)) == CONTINUOUS  # casts to int
    assert column_type(rng.normal(size=10), ["1", "2"]) == CATEGORICAL  # two values given
    labels = np.where(rng.random(100) < 0.5, 1.0, 0.0)
    labels[3] = np.nan
    assert column_type(labels) == CONTINUOUS
    assert column_type(labels, whole_floats=True) == CATEGORICAL  # Shipyard: a 0/1 label with a gap


def test_groups_and_their_names() -> None:
    values = np.array(["b", None, "a", "b", "c", np.nan], dtype=object)
    groups = facet_groups(values, parse_facet("x"))
    assert groups.names == ["b", "nan", "a", "c"]  # order of appearance, the missing value where it first is
    assert groups.codes.tolist() == [0, -1, 2, 0, 3, -1]
    age = np.array([20.0, 45.0, 80.0, np.nan])
    above = facet_groups(age, parse_facet("age=40"))
    assert above.names == ["(40.0, 80.0]"] and above.codes.tolist() == [-1, 0, 0, -1]
    beyond = facet_groups(age, parse_facet("age>80"))  # |max| is the threshold: one break, an empty group
    assert beyond.names == [""] and (beyond.codes == -1).all()
    ints = np.array([1, 2, 3, 1, 2, 3] * 100)  # categorical by the 5% rule; '>' forces a threshold
    assert facet_groups(ints, parse_facet("n>1")).names == ["(1.0, 3.0]"]
    assert facet_groups(ints, parse_facet("n=2")).names == ["2"]
    assert facet_groups(ints, parse_facet("n=2")).codes.tolist()[:3] == [-1, 0, -1]
    with pytest.raises(ArgumentError, match="continuous"):
        facet_groups(age, parse_facet("age"))


def test_labels_and_predictions() -> None:
    y = np.array([0, 1, 1, 0] * 30)
    positive, text = label_mask(y, ["1"])
    assert text == "1" and positive.tolist()[:4] == [False, True, True, False]
    score = np.linspace(0, 100, 120)
    above, text = label_mask(score, [">50"])
    assert text == "(50.0, 100.0]" and above.sum() == np.sum(score > 50)
    scores = np.array([0.2, 0.5, 0.7, 0.49] * 30)
    assert predicted_mask(scores, y, ["1"]).tolist()[:4] == [False, True, True, False]  # at or above 0.5
    assert predicted_mask(scores, y, ["1"], 0.6).tolist()[:4] == [False, False, True, False]
    with pytest.raises(ArgumentError, match="typed"):
        predicted_mask(np.linspace(0, 100, 120), y, ["1"])


def test_predictions_not_typed_like_the_label_are_refused() -> None:
    """Text labels against numeric predictions (or the other way), and predictions with no positive label
    value among values the label never takes (--predicted naming another column), are exit-2 errors naming
    the columns and a few values; predictions that are all a negative label value are a model's answer."""
    words = np.array(["yes", "no"] * 60, dtype=object)
    numbers = np.array([0, 1] * 60)
    with pytest.raises(ArgumentError, match=r"predicted pred: the predictions are numbers, the label text.*"
                       r"predictions: '0', '1'; label y: 'no', 'yes'"):  # fmt: skip
        predicted_mask(numbers, words, ["yes"], names=("pred", "y"))
    with pytest.raises(ArgumentError, match="the predictions are text, the label numbers"):
        predicted_mask(words, numbers, ["1"], names=("pred", "y"))
    gender = np.array(["female", "male"] * 60, dtype=object)
    with pytest.raises(ArgumentError, match=r"predicted gender: no prediction is a positive label value \(yes\)"):
        predicted_mask(gender, words, ["yes"], names=("gender", "y"))
    with pytest.raises(MonitorError, match="the model's predictions: the predictions are numbers"):
        predicted_mask(numbers, words, ["yes"], names=(None, "y"))
    assert not predicted_mask(np.array(["no"] * 120, dtype=object), words, ["yes"]).any()  # all negative: fine
    assert predicted_mask(np.array([1.0, 0.0] * 60), numbers, ["1"]).tolist()[:2] == [True, False]  # 1.0 is 1
    assert predicted_mask(np.array([0.2, 0.9] * 60), words, ["yes"]).tolist()[:2] == [False, True]  # scores


# -- analysis.json -----------------------------------------------------------------------------------
def test_metric_entries_and_reading_them_back(tmp_path: Path) -> None:
    assert metric_entry("DI", 0.5) == {"name": "DI", "description": "Disparate Impact (DI)", "value": 0.5}
    assert metric_entry("TE", -math.inf)["value"] == "-Infinity"
    error = metric_entry("FT", None, "FlipTest does not support non-numeric columns")
    assert error["value"] is None and error["error"].startswith("FlipTest")
    assert metric_value({"value": "Infinity"}) == math.inf and metric_value(error) is None
    assert DESCRIPTIONS["KL"] == "Kullback-Liebler Divergence (KL)" and len(DESCRIPTIONS) == 21
    (tmp_path / "x.json").write_text('{"violations": []}')
    with pytest.raises(MonitorError, match="not a Clarify analysis"):
        read_analysis(tmp_path / "x.json")


def _validate(document: Any, name: str) -> None:
    jsonschema.validate(document, json.loads((SCHEMAS / name).read_text()))


def test_run_bias_finds_a_planted_disparity_and_writes_valid_files(tmp_path: Path) -> None:
    data = write(planted(np.random.default_rng(5)), tmp_path / "data.parquet")
    result = run_bias(data, tmp_path / "out", label="y", facets=["gender=female"], predicted="pred", group_by="region")
    found = {(v["facet"], v["facet_value"], v["metric_name"]) for v in result.violations}
    assert ("gender", "female", "DPL") in found and ("gender", "female", "DI") in found
    analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
    _validate(analysis, "bias_analysis.schema.json")
    assert read_analysis(tmp_path / "out" / "analysis.json") == analysis == result.document
    violations = json.loads((tmp_path / "out" / "bias_violations.json").read_text())
    _validate(violations, "bias_violations.schema.json")
    assert violations["violations"] == result.violations
    assert all(v["constraint_check_type"] == "bias_threshold_check" for v in result.violations)
    assert result.violations[0]["description"].startswith("Value ")
    # a wider band for the metrics that fired: no violation (DCAcc is DCA's other name)
    wide = {name: (-10.0, 10.0) for name in DEFAULT_THRESHOLDS} | {"DCAcc": (-1.0, 1.0)}
    calm = run_bias(data, tmp_path / "o2", label="y", facets=["gender=female"], predicted="pred", thresholds=wide)
    assert calm.violations == []


def test_small_groups_and_infinite_values_are_problems_not_violations(tmp_path: Path) -> None:
    data = planted(np.random.default_rng(9), 2000)
    data["gender"][:30] = "other"
    data["y"][:30] = 1  # a group of 30 with every label positive: DPL far off, but the group is small
    path = write(data, tmp_path / "small.parquet")
    result = run_bias(path, tmp_path / "out", label="y", facets=["gender=other"], predicted="pred")
    assert result.violations == []
    assert any("30 rows in the group" in line for line in result.problems.summary())
    problems = Problems()
    document = {
        "post_training_bias_metrics": {
            "facets": {"g": [{"value_or_threshold": "x", "metrics": [metric_entry("DI", math.inf)]}]}
        }
    }
    assert bias_violations(document, DEFAULT_THRESHOLDS, {("g", "x"): 500}, 1000, problems) == []
    assert "DI is Infinity" in problems.summary()[0]


def test_a_value_no_row_has_gives_error_entries(tmp_path: Path) -> None:
    data = planted(np.random.default_rng(2), 500)
    document = bias_analysis(data, label="y", facets=["gender=unknown"], predicted="pred")
    metrics = document["pre_training_bias_metrics"]["facets"]["gender"][0]["metrics"]
    assert {m["name"]: m.get("error") for m in metrics}["CI"] == (
        "CI: facet set is empty. Check that x[facet] has non-zero length."
    )
    post = {m["name"]: m for m in document["post_training_bias_metrics"]["facets"]["gender"][0]["metrics"]}
    assert post["DI"]["value"] is None and post["DI"]["error"] == "Facet set is empty"
    assert post["GE"]["value"] is not None  # the whole set's, whatever the facet


def test_one_hundred_fair_data_sets_raise_no_violation() -> None:
    """≥ 5,000 rows, ≥ 20% in each group, labels and predictions independent of the group."""
    rng = np.random.default_rng(100)
    alarms = []
    for trial in range(100):
        n = int(rng.integers(5000, 8000))
        share = rng.uniform(0.2, 0.5)
        gender = np.where(rng.random(n) < share, "female", "male").astype(object)
        region = rng.choice(np.array(["n", "s", "e"], dtype=object), n)
        base = rng.uniform(0.2, 0.7)
        y = (rng.random(n) < base).astype(np.int64)
        pred = np.where(rng.random(n) < rng.uniform(0.75, 0.95), y, 1 - y)
        columns = {"gender": gender, "region": region, "y": y, "pred": pred}
        document = bias_analysis(
            columns, label="y", facets=["gender=female"], predicted="pred", group_by="region", flip_test=False
        )
        size = int(np.sum(gender == "female"))
        found = bias_violations(document, DEFAULT_THRESHOLDS, {("gender", "female"): size}, n, Problems())
        alarms += [(trial, v["metric_name"], v["description"]) for v in found]
    assert alarms == []


def test_a_float_label_with_a_gap_several_facets_and_a_text_group_with_gaps() -> None:
    rng = np.random.default_rng(11)
    data = planted(rng, 1000)
    label = data["y"].astype(np.float64)
    label[:5] = np.nan  # read as float: Shipyard still takes 1 for a value, not the threshold y > 1
    region = data["region"].copy()
    region[:7] = None
    columns = {**data, "y": label, "region": region}
    document = bias_analysis(columns, label="y", facets=["gender=female", "x1>0"], predicted="pred", group_by="region")
    pre = document["pre_training_bias_metrics"]
    assert pre["label_value_or_threshold"] == "1" and list(pre["facets"]) == ["gender", "x1"]
    assert pre["facets"]["x1"][0]["value_or_threshold"].startswith("(0.0, ")
    values = {m["name"]: m["value"] for m in pre["facets"]["gender"][0]["metrics"]}
    assert values["DPL"] > 0.2 and isinstance(values["CDDL"], float)
    with pytest.raises(ArgumentError, match="no label of y is positive"):
        bias_analysis(columns, label="y", facets=["gender"], positive=["yes"])


def test_flip_test_without_scikit_learn_is_an_error_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.neighbors", None)  # import fails
    value = bm.flip_test(np.zeros((4, 1)), np.array([True, False, True, False]), np.array([True] * 4))
    assert value == bm.Unavailable("FT needs scikit-learn: pip install shipyard[sklearn]")
