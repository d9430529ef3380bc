"""No false alarms from sampling error: the standard errors of the rate metrics, the band test at the edge
(Bonferroni), 100 varied fair data sets and a 1,000-valued random facet without a violation, planted
disparities still found (through the CLI too), and bias drift judged the same way."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.monitor import bias_metrics as bm
from shipyard.monitor.bias import DEFAULT_THRESHOLDS, bias_analysis, bias_violations
from shipyard.monitor.bias_judge import DRIFT_METRICS, MIN_GROUP_ROWS, critical_z, z_score
from shipyard.monitor.clarify_drift import bias_drift_violations
from shipyard.monitor.problems import Problems


def judge(
    columns: dict[str, np.ndarray], facets: list[str], group_by: str | None = None, **bands: tuple[float, float]
) -> tuple[list[dict[str, Any]], Problems, dict[str, Any]]:
    """bias_analysis and bias_violations at the defaults, as run_bias calls them."""
    evidence: dict[tuple[str, str], bm.Evidence] = {}
    document = bias_analysis(
        columns, label="y", facets=facets, predicted="p", group_by=group_by, flip_test=False, evidence=evidence
    )
    sizes = {key: e.rows for key, e in evidence.items()}
    problems = Problems()
    rows = len(columns["y"])
    found = bias_violations(document, DEFAULT_THRESHOLDS | bands, sizes, rows, problems, evidence)
    return found, problems, document


def exact(groups: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """Columns with exact counts: group → (rows, positive predictions); the labels are the predictions (so
    DPL = DPPL and AD, RD, DAR, DRR are 0)."""
    g, p = [], []
    for name, (rows, predicted) in groups.items():
        g += [name] * rows
        p += [1] * predicted + [0] * (rows - predicted)
    return {"g": np.array(g, dtype=object), "y": np.array(p, np.int64), "p": np.array(p, np.int64)}


# -- the standard errors -----------------------------------------------------------------------------
def test_standard_errors_from_the_counts() -> None:
    n = np.zeros((2, 2, 2), np.int64)
    n[0] = [[300, 100], [50, 550]]  # a: [y][p]
    n[1] = [[80, 20], [40, 60]]  # d
    ev = bm.evidence(bm.Counts(n))
    assert (ev.rows, ev.rest) == (200, 1000)

    def var(x: int, m: int) -> float:
        q = (x + 1) / (m + 2)
        return q * (1 - q) / m

    assert math.isclose(ev.errors["DPPL"], math.sqrt(var(650, 1000) + var(80, 200)))
    assert math.isclose(ev.errors["DPL"], math.sqrt(var(600, 1000) + var(100, 200)))
    assert math.isclose(ev.errors["AD"], math.sqrt(var(850, 1000) + var(140, 200)))
    assert math.isclose(ev.errors["RD"], math.sqrt(var(550, 600) + var(60, 100)))
    assert math.isclose(ev.errors["DAR"], math.sqrt(var(550, 650) + var(60, 80)))
    assert math.isclose(ev.errors["DRR"], math.sqrt(var(300, 350) + var(80, 120)))
    qa, qd = 651 / 1002, 81 / 202
    assert math.isclose(ev.errors["DI"], math.sqrt((1 - qd) / (200 * qd) + (1 - qa) / (1000 * qa)))
    assert math.isclose(ev.log_di, math.log(qd / qa))
    assert "CDDL" not in ev.errors  # no group variable
    # a rate of 0 still has a standard error; an empty side is never precise
    zero = np.zeros((2, 2, 2), np.int64)
    zero[0, 0, 0], zero[1, 0, 0] = 500, 60
    assert all(0 < e < math.inf for e in bm.evidence(bm.Counts(zero)).errors.values())


def test_cdd_standard_error_by_hand() -> None:
    # [d, g, v]: g = 0 the missing group (weighs nothing), then two groups
    by = np.zeros((2, 3, 2), np.int64)
    by[0, 1], by[1, 1] = [40, 60], [10, 10]  # group 1: v = 0 / v = 1 rows of a and d
    by[0, 2], by[1, 2] = [70, 10], [15, 5]
    error = bm.evidence(bm.Counts(np.ones((2, 2, 2), np.int64)), by, by).errors["CDDL"]
    w = np.array([120, 100]) / 220
    d = np.array([(10 + 1) / (50 + 2), (15 + 1) / (85 + 2)])
    a = np.array([(10 + 1) / (70 + 2), (5 + 1) / (15 + 2)])
    expected = math.sqrt(np.sum(w**2 * (d * (1 - d) / [50, 85] + a * (1 - a) / [70, 15])))
    assert math.isclose(error, expected)


def test_critical_value_is_bonferronis() -> None:
    assert math.isclose(critical_z(1), 1.6448536, rel_tol=1e-6)
    assert math.isclose(critical_z(20), 2.8070338, rel_tol=1e-6)  # Φ⁻¹(1 − 0.05/20)
    assert critical_z(40_000) > 4.5


def test_di_is_judged_on_the_log_scale() -> None:
    ev = bm.Evidence(1000, 1000, {"DI": 0.1}, math.log(0.5))
    assert math.isclose(z_score("DI", 0.8 * math.exp(-0.3), 0.8, 1.25, ev), 3.0)
    assert math.isclose(z_score("DI", 1.25 * math.exp(0.3), 0.8, 1.25, ev), 3.0)
    assert z_score("DI", 1.0, 0.8, 1.25, ev) < 0
    assert math.isclose(z_score("DI", 0.0, 0.8, 1.25, ev), (math.log(0.8) - math.log(0.5)) / 0.1)


# -- no false alarms ---------------------------------------------------------------------------------
def fair(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[str], str | None]:
    """300–20,000 rows; a facet of 2–20 values, the first holding 2–50% of the rows; a group variable in
    half; labels at a base rate of 0.1–0.9 and predictions, both independent of the facet."""
    n = int(rng.integers(300, 20_001))
    values = int(rng.integers(2, 21))
    share = rng.uniform(0.02, 0.5)
    weights = np.r_[share, np.full(values - 1, (1 - share) / (values - 1))]
    g = rng.choice(np.array([f"v{i}" for i in range(values)], dtype=object), n, p=weights)
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    p = np.where(rng.random(n) < rng.uniform(0.6, 0.95), y, 1 - y)
    columns = {"g": g, "y": y, "p": p}
    group_by = None
    if rng.random() < 0.5:
        columns["region"] = rng.choice(np.array(["n", "s", "e", "w"], dtype=object), n)
        group_by = "region"
    facets = ["g"] if rng.random() < 0.7 else ["g=v0"]  # each value vs all, or the small one
    return columns, facets, group_by


def test_one_hundred_varied_fair_data_sets_raise_no_violation() -> None:
    rng = np.random.default_rng(18)
    alarms, plain, ignored = [], 0, 0
    for trial in range(100):
        columns, facets, group_by = fair(rng)
        found, problems, document = judge(columns, facets, group_by)
        alarms += [(trial, v["facet_value"], v["metric_name"], v["description"]) for v in found]
        ignored += problems.counts.get("not significant", 0)
        # the plain band test on the same analyses (what judging without the standard errors gives)
        sizes = {(k.split("=")[0], str(v)): int(np.sum(columns["g"] == v)) for k in facets for v in set(columns["g"])}
        sizes[("g", "v0")] = int(np.sum(columns["g"] == "v0"))
        plain += bool(bias_violations(document, DEFAULT_THRESHOLDS, sizes, len(columns["y"]), Problems()))
    assert alarms == []
    assert plain >= 10 and ignored >= 10  # the data sets are hard: the band alone raises alarms on many


def test_a_thousand_valued_random_facet_on_100k_rows_raises_no_violation() -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    g = rng.integers(0, 1000, n).astype(np.int64).astype(str).astype(object)
    y = (rng.random(n) < 0.3).astype(np.int64)
    p = np.where(rng.random(n) < 0.8, y, 1 - y)
    found, problems, _ = judge({"g": g, "y": y, "p": p}, ["g"])
    assert found == []
    assert problems.counts["not significant"] > 100  # ~100-row groups: many outside the band by chance


# -- planted disparities are still found -------------------------------------------------------------
def test_a_planted_dppl_of_025_exits_3_through_the_cli(tmp_path: Path) -> None:
    # 2,000 rows, 20% in the group: 50% predicted positive outside it, 25% in it
    columns = exact({"f": (400, 100), "m": (1600, 800)})
    data = tmp_path / "planted.parquet"
    pq.write_table(pa.table(columns), data)
    args = ["monitor", "bias", str(data), "-l", "y", "-f", "g=f", "--predicted", "p", "-o", str(tmp_path / "o")]
    done = CliRunner().invoke(app, [*args, "--output", "json"])
    assert done.exit_code == 3, done.output
    document = json.loads(done.output[done.output.index("\n{") + 1 :])  # after the warnings
    names = {v["metric_name"] for v in document["violations"]}
    assert {"DPPL", "DPL", "DI"} <= names
    dppl = next(m for m in document["metrics"] if m["metric"] == "DPPL")
    assert math.isclose(dppl["value"], 0.25)
    keys = {"facet", "facet_value", "metric_name", "constraint_check_type", "description"}
    on_disk = json.loads((tmp_path / "o" / "bias_violations.json").read_text())["violations"]
    assert on_disk == document["violations"] and all(set(v) == keys for v in on_disk)


def test_a_planted_di_of_06_is_found_with_dppl_inside_its_band() -> None:
    # 5,000 rows, 30% in the group: 20% predicted positive outside it, 12% in it (DPPL 0.08)
    found, _, document = judge(exact({"f": (1500, 180), "m": (3500, 700)}), ["g=f"])
    assert {v["metric_name"] for v in found} == {"DI"}
    post = document["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]
    assert math.isclose(next(m["value"] for m in post if m["name"] == "DI"), 0.6)


def test_the_borderline_cases() -> None:
    # just inside the band on a huge sample: nothing to say
    found, problems, _ = judge(exact({"f": (50_000, 20_250), "m": (50_000, 25_000)}), ["g=f"])
    assert found == [] and not problems.counts.get("not significant")
    # just outside (DPPL 0.12) on 100-row groups: within sampling error, said so, not a violation
    found, problems, _ = judge(exact({"f": (100, 38), "m": (900, 450)}), ["g=f"])
    assert found == []
    assert any("DPPL 0.12 is outside [-0.1, 0.1] but within sampling error" in m for m in problems.summary())
    # just outside on 100,000 rows a side: beyond sampling error
    found, _, _ = judge(exact({"f": (100_000, 38_000), "m": (100_000, 50_000)}), ["g=f"])
    assert "DPPL" in {v["metric_name"] for v in found}
    # a metric without a standard error keeps the plain band test when given one
    found, _, _ = judge(exact({"f": (400, 100), "m": (1600, 800)}), ["g=f"], CI=(-0.5, 0.5))
    assert "CI" in {v["metric_name"] for v in found}


def test_no_default_band_for_the_metrics_without_a_standard_error() -> None:
    without = {"CI", "KL", "JS", "LP", "TVD", "KS", "DCA", "DCR", "TE", "FT", "GE", "SD"}
    assert not without & set(DEFAULT_THRESHOLDS)
    assert set(DEFAULT_THRESHOLDS) == set(DRIFT_METRICS)
    ev = bm.evidence(bm.Counts(np.ones((2, 2, 2), np.int64)), np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    assert set(ev.errors) == set(DEFAULT_THRESHOLDS)


# -- bias drift --------------------------------------------------------------------------------------
def traffic(rng: np.random.Generator, n: int, gap: float = 0.0) -> dict[str, np.ndarray]:
    g = np.where(rng.random(n) < 0.4, "f", "m").astype(object)
    y = (rng.random(n) < 0.5).astype(np.int64)
    p = np.where(rng.random(n) < 0.85, y, 1 - y)
    if gap:  # the group's positive predictions turned negative until DPPL ≈ gap
        flip = (g == "f") & (p == 1) & (rng.random(n) < gap / 0.5)
        p = np.where(flip, 0, p)
    return {"g": g, "y": y, "p": p}


def drift(
    baseline: dict[str, np.ndarray], current: dict[str, np.ndarray], facets: list[str], **options: Any
) -> tuple[list[dict[str, Any]], Problems, dict[str, Any]]:
    def analysis(columns: dict[str, np.ndarray], evidence: dict[tuple[str, str], bm.Evidence] | None) -> Any:
        return bias_analysis(
            columns, label="y", facets=facets, predicted="p", pre_training=False, flip_test=False, evidence=evidence
        )

    evidence: dict[tuple[str, str], bm.Evidence] = {}
    current_doc = analysis(current, evidence)
    problems, record = Problems(), {}
    found = bias_drift_violations(
        analysis(baseline, None), current_doc, evidence=evidence, problems=problems, record=record, **options
    )
    return found, problems, record


def test_twenty_same_distribution_pairs_raise_no_bias_drift() -> None:
    rng = np.random.default_rng(1)
    alarms, worse = [], 0
    for trial in range(20):
        found, _, record = drift(traffic(rng, 5000), traffic(rng, 5000), ["g"])
        alarms += [(trial, v["facet_value"], v["metric_name"]) for v in found]
        worse += len(record["past_the_edge"])
    assert alarms == []
    assert worse >= 20  # about half the metrics are a hair worse than the baseline by chance


def test_a_planted_drift_of_dppl_0_to_03_is_a_violation() -> None:
    rng = np.random.default_rng(2)
    found, _, record = drift(traffic(rng, 5000), traffic(rng, 5000, gap=0.3), ["g=f"])
    assert {"DPPL", "DI"} <= {v["metric_name"] for v in found}
    assert all(v["constraint_check_type"] == "bias_drift_check" for v in found)
    dppl = next(v for v in record["past_the_edge"] if v["metric_name"] == "DPPL")
    assert dppl["value"] > 0.25 and abs(dppl["baseline_value"]) < 0.05 and dppl["z"] > record["critical_z"]
    # the tolerance is an extra margin on top
    found, _, _ = drift(traffic(rng, 5000), traffic(rng, 5000, gap=0.3), ["g=f"], tolerance=1.0)
    assert found == []


def test_a_small_group_of_the_traffic_is_not_judged() -> None:
    rng = np.random.default_rng(3)
    current = traffic(rng, 5000)
    current["g"][: MIN_GROUP_ROWS - 10] = "x"
    current["p"][: MIN_GROUP_ROWS - 10] = 1
    baseline = traffic(rng, 5000)
    baseline["g"][: MIN_GROUP_ROWS + 100] = "x"
    found, problems, _ = drift(baseline, current, ["g"])
    assert all(v["facet_value"] != "x" for v in found)
    assert any("too few rows to judge" in k for k in problems.counts)
