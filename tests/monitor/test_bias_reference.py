"""Every bias metric against smclarify 0.5 (run in one subprocess), and DPPL/DI against fairlearn.

The data sets: a planted disparity (text facet, text group variable), a multi-valued integer facet one vs
all and with two values, continuous facets with a threshold (floats, and integers with ≥ 5% distinct
values), an integer facet typed categorical by the 5% rule, a label threshold, missing facet values,
adult-like numeric data (FT runs, with k = 5 and k = 1), scores (Shipyard's labels at 0.5 against smclarify
given those labels), a CSV with empty facet cells (smclarify reading it with pandas.read_csv), and real data:
scikit-learn's breast cancer set with a LogisticRegression's predictions, the facet 'mean radius' above its
median (0/1, and as the continuous column with a threshold), FT on the 30 features. Values must agree within 1e-9;
value_or_threshold, label_value_or_threshold, metric names, descriptions and error messages must be the same strings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bias_helpers import adult_like, breast_cancer, clarify_ref_dir, columns_of, planted, smclarify, write, write_csv

from shipyard.monitor.bias import bias_analysis


@pytest.fixture(scope="session")
def clarify_ref() -> Path:
    """smclarify's directory, installed by scripts/clarify-ref.sh when it is missing (never skipped)."""
    return clarify_ref_dir()


def _cases(tmp: Path) -> list[dict[str, Any]]:
    rng = np.random.default_rng(18)
    cases: list[dict[str, Any]] = []

    def add(data: Path, facet: str, values: list[str] | None, **extra: Any) -> None:
        case = {"data": str(data), "label": "y", "positive": ["1"], "facet": facet, "values": values}
        cases.append({**case, "predicted": "pred", "group": None, "drop": [], **extra})

    p = write(planted(rng), tmp / "planted.parquet")
    add(p, "gender", None, group="region")
    add(p, "gender", ["female"], group="region")
    add(p, "gender", ["female"], drop=["region"])  # no group variable: CDDL and CDDPL are errors
    add(p, "region", ["north", "east"], group="gender")
    nan = write(planted(rng, nan_share=0.1), tmp / "nan.parquet")
    add(nan, "gender", None, group="region")
    add(nan, "gender", ["female"], group="region")
    adult = adult_like(rng)
    a = write(adult, tmp / "adult.parquet")
    add(a, "race", None)  # 5 values, one vs all, FT on numbers only
    add(a, "race", ["1", "3"])
    add(a, "sex", ["1"], group="race")
    add(a, "age", ["40"])  # float: the threshold (40.0, 80.0]
    add(a, "f0", [str(float(np.sort(adult["f0"])[-6]))])  # five rows above: k = 5 for FT on the rest …
    add(a, "f1", [str(float(np.sort(adult["f1"])[5]))])  # … and six rows below: a has 6 rows, k = 1
    ages = {"age": rng.integers(18, 81, 1000), "y": (rng.random(1000) < 0.4).astype(np.int64)}
    ages["pred"] = np.where(rng.random(1000) < 0.9, ages["y"], 1 - ages["y"])
    add(write(ages, tmp / "int-age-continuous.parquet"), "age", ["40"])  # 6.3% distinct: a threshold
    big = {"age": rng.integers(18, 81, 3000), "y": (rng.random(3000) < 0.4).astype(np.int64)}
    big["pred"] = np.where(rng.random(3000) < 0.9, big["y"], 1 - big["y"])
    add(write(big, tmp / "int-age-categorical.parquet"), "age", ["40"])  # 2.1% distinct: the value 40
    score = rng.uniform(0, 100, 2000)
    group = np.where(rng.random(2000) < 0.3, "b", "a").astype(object)
    scores = {"g": group, "y": score + np.where(group == "b", -10, 0), "pred": score + rng.normal(0, 5, 2000)}
    add(write(scores, tmp / "label-threshold.parquet"), "g", None, positive=["50"])
    extreme = planted(rng, 2000)
    extreme["y"] = np.where(extreme["gender"] == "female", 1, extreme["y"])  # all of d positive: KL < 0
    extreme["pred"] = np.where(extreme["gender"] == "male", 1, extreme["pred"])
    add(write(extreme, tmp / "extreme.parquet"), "gender", None, group="region")
    scored = planted(rng, 3000)
    scored["score"] = np.clip(scored["pred"] * 0.6 + rng.uniform(0, 0.4, 3000), 0, 1)
    scored["pred"] = (scored["score"] >= 0.5).astype(np.int64)  # what smclarify gets: the labels at 0.5
    ours = {"predicted": "score", "drop": ["pred"]}  # what Shipyard gets: the scores
    add(write(scored, tmp / "scores.parquet"), "gender", None, group="region", drop=["score"], ours=ours)
    # CSV with empty facet cells (smclarify reads it with pandas.read_csv): the missing value is 'nan', as
    # from Parquet, not ''
    csv = write_csv(planted(rng, nan_share=0.1), tmp / "nan.csv")
    add(csv, "gender", None, group="region")
    add(csv, "region", ["north"])  # (smclarify cannot sort a group variable with missing values)
    # real data: scikit-learn's breast cancer set, a LogisticRegression's predictions, FT on its 30 features
    cancer = write(breast_cancer(), tmp / "breast-cancer.parquet")
    add(cancer, "big", None)  # 'mean radius' above its median, 0/1: one vs all
    add(cancer, "big", ["1"])
    median = float(np.median(breast_cancer()["mean radius"]))
    add(cancer, "mean radius", [str(median)], drop=["big"])  # the continuous form: a threshold at the median
    return cases


def _close(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) and isinstance(theirs, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return bool(ours == theirs)


def _compare(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], where: str) -> None:
    assert [e["value_or_threshold"] for e in ours] == [e["value_or_threshold"] for e in theirs], where
    for mine, ref in zip(ours, theirs, strict=True):
        assert [m["name"] for m in mine["metrics"]] == [m["name"] for m in ref["metrics"]], where
        for m, r in zip(mine["metrics"], ref["metrics"], strict=True):
            at = f"{where} {mine['value_or_threshold']} {m['name']}: ours {m}, smclarify {r}"
            assert m["description"] == r["description"], at
            assert _close(m["value"], r["value"]), at
            assert m.get("error") == r.get("error"), at


def test_every_metric_equals_smclarify(tmp_path: Path, clarify_ref: Path) -> None:
    cases = _cases(tmp_path)
    answers = smclarify(cases, tmp_path, clarify_ref)
    for case, answer in zip(cases, answers, strict=True):
        where = f"{Path(case['data']).name} {case['facet']}={case['values']}"
        assert "error" not in answer, f"{where}: {answer}"
        spec = case["facet"] + ("=" + ",".join(case["values"]) if case["values"] else "")
        ours = case.pop("ours", {})
        document = bias_analysis(
            columns_of(Path(case["data"]), ours.get("drop", case["drop"])),
            label="y",
            facets=[spec],
            positive=case["positive"],
            predicted=ours.get("predicted", "pred"),
            group_by=case["group"],
        )
        pre, post = document["pre_training_bias_metrics"], document["post_training_bias_metrics"]
        assert pre["label_value_or_threshold"] == answer["label_value_or_threshold"], where
        _compare(pre["facets"][case["facet"]], answer["pre"], where + " pre")
        _compare(post["facets"][case["facet"]], answer["post"], where + " post")


def test_strings_as_smclarify_writes_them(tmp_path: Path) -> None:
    """The value_or_threshold strings of the cases above, spelled out."""
    cases = _cases(tmp_path)
    found = {}
    for case in cases:
        spec = case["facet"] + ("=" + ",".join(case["values"]) if case["values"] else "")
        document = bias_analysis(
            columns_of(Path(case["data"]), case["drop"]), label="y", facets=[spec], positive=case["positive"]
        )
        entries = document["pre_training_bias_metrics"]["facets"][case["facet"]]
        found[(Path(case["data"]).stem, spec)] = [e["value_or_threshold"] for e in entries]
    assert found[("planted", "gender")] == ["female", "male"] or found[("planted", "gender")] == ["male", "female"]
    assert found[("nan", "gender")][:3].count("nan") == 1
    assert found[("adult", "race=1,3")] == ["1,3"]
    assert found[("adult", "age=40")] == ["(40.0, 80.0]"]
    assert found[("int-age-continuous", "age=40")] == ["(40.0, 80.0]"]
    assert found[("int-age-categorical", "age=40")] == ["40"]
    assert len(found[("adult", "race")]) == 5
    assert sorted(found[("nan", "gender")]) == ["female", "male", "nan"]  # the CSV's empty cells too
    assert found[("breast-cancer", "big")] == ["0", "1"] or found[("breast-cancer", "big")] == ["1", "0"]


def test_dppl_and_di_agree_with_fairlearn(tmp_path: Path) -> None:
    from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

    rng = np.random.default_rng(7)
    for trial in range(5):
        data = planted(rng, 3000)
        document = bias_analysis(data, label="y", facets=["gender=female"], predicted="pred")
        metrics = {
            m["name"]: m["value"] for m in document["post_training_bias_metrics"]["facets"]["gender"][0]["metrics"]
        }
        sensitive = data["gender"].astype(str)
        difference = demographic_parity_difference(data["y"], data["pred"], sensitive_features=sensitive)
        ratio = demographic_parity_ratio(data["y"], data["pred"], sensitive_features=sensitive)
        assert abs(metrics["DPPL"]) == pytest.approx(difference, abs=1e-12), trial
        assert min(metrics["DI"], 1 / metrics["DI"]) == pytest.approx(ratio, abs=1e-12), trial
