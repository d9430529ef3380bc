"""``shipyard monitor check``: real captured traffic and planted faults give exactly the expected violations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from monitor_helpers import HOUR, T0, Captured, records_payloads, write_capture
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.monitor import make_baseline, run_check

pytestmark = pytest.mark.integration


def pairs(violations: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in violations}


def test_same_distribution_from_a_real_server_has_no_violations(
    digits_capture: Captured, digits_baseline: Path, tmp_path: Path
) -> None:
    result = run_check(digits_capture.root, digits_baseline, tmp_path / "out", window=None)
    assert result.rows == len(digits_capture.rows)  # every captured request, one row each
    assert result.violations == []
    # small samples are decided by tests, with the family-wise correction across the 64 features
    methods = {f["method"] for f in result.drift["features"]}
    assert methods == {"ks"}


def test_cli_exit_code_is_zero_without_violations_and_three_with(
    digits_capture: Captured, shifted_capture: Captured, digits_baseline: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    same = runner.invoke(
        app, ["monitor", "check", str(digits_capture.root), "-b", str(digits_baseline), "-o", str(tmp_path / "a")]
    )
    assert same.exit_code == 0, same.output
    assert "no violations" in same.output
    shifted = runner.invoke(
        app, ["monitor", "check", str(shifted_capture.root), "-b", str(digits_baseline), "-o", str(tmp_path / "b")]
    )
    assert shifted.exit_code == 3, shifted.output
    assert "baseline_drift_check" in shifted.output
    # and through the console script a scheduler runs (the exit code must survive `shipyard`'s main())
    command = [str(Path(sys.executable).parent / "shipyard"), "monitor", "check", str(shifted_capture.root)]
    done = subprocess.run([*command, "-b", str(digits_baseline), "-o", str(tmp_path / "c")], capture_output=True)
    assert done.returncode == 3, done.stderr


def test_shifted_features_from_a_real_server_are_exactly_the_ones_flagged(
    shifted_capture: Captured, digits_baseline: Path, tmp_path: Path
) -> None:
    result = run_check(shifted_capture.root, digits_baseline, tmp_path / "out")
    assert pairs(result.violations) == {
        ("pixel_20", "baseline_drift_check"),
        ("pixel_21", "baseline_drift_check"),
        ("pixel_22", "baseline_drift_check"),
    }
    written = orjson.loads((tmp_path / "out" / "constraint_violations.json").read_bytes())
    assert written == {"violations": result.violations}


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training table with numeric, integral and categorical features, and its baseline."""
    rng = np.random.default_rng(7)
    n = 20_000
    root = tmp_path_factory.mktemp("tabular")
    table = pa.table(
        {
            "a": rng.normal(0, 1, n),
            "b": rng.normal(5, 2, n),
            "c": rng.uniform(0, 10, n),
            "d": rng.poisson(3, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "label": rng.integers(0, 2, n),
        }
    )
    pq.write_table(table, root / "train.parquet")
    make_baseline(root / "train.parquet", root / "baseline", exclude=["label"])
    return root


def current_rows(n: int, seed: int) -> dict[str, list[object]]:
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(0, 1, n).tolist(),
        "b": rng.normal(5, 2, n).tolist(),
        "c": rng.uniform(0, 10, n).tolist(),
        "d": rng.poisson(3, n).tolist(),
        "color": rng.choice(["red", "green", "blue"], n).tolist(),
    }


def test_planted_faults_give_exactly_the_expected_violations(tabular: Path, tmp_path: Path) -> None:
    """Shift b by 1σ, add a new colour, drop column c, null 10 % of a, put text into 5 % of d."""
    n = 3000
    rows = current_rows(n, 1)
    rng = np.random.default_rng(2)
    rows["b"] = [v + 2.0 for v in rows["b"]]
    rows["color"] = [("purple" if rng.random() < 0.2 else v) for v in rows["color"]]
    del rows["c"]
    rows["a"] = [None if i % 10 == 0 else v for i, v in enumerate(rows["a"])]
    rows["d"] = ["n/a" if i % 20 == 0 else v for i, v in enumerate(rows["d"])]
    write_capture(tmp_path / "capture", records_payloads(rows, T0))
    result = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "out")
    assert result.rows == n
    assert pairs(result.violations) == {
        ("b", "baseline_drift_check"),
        ("color", "categorical_values_check"),
        ("color", "baseline_drift_check"),
        ("c", "missing_column_check"),
        ("a", "completeness_check"),
        ("d", "data_type_check"),
    }
    described = {
        v["feature_name"]: v for v in result.violations if v["constraint_check_type"] != "baseline_drift_check"
    }
    assert described["color"]["values_outside_domain"] == ["purple"]
    assert described["a"]["description"] == (
        "Data completeness requirement is not met. Expected completeness: 100.0%. "
        "Observed: Only 90.0% of data is complete."
    )


def test_the_same_distribution_from_a_file_and_from_captured_json_has_no_violations(
    tabular: Path, tmp_path: Path
) -> None:
    rows = current_rows(5000, 3)
    write_capture(tmp_path / "capture", records_payloads(rows, T0))
    assert run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "o1").violations == []
    pq.write_table(pa.table(rows), tmp_path / "current.parquet")
    from_file = run_check(tmp_path / "current.parquet", tabular / "baseline", tmp_path / "o2")
    assert from_file.violations == []
    assert {f["method"] for f in from_file.drift["features"]} == {"wasserstein", "jensen_shannon"}


def test_since_reads_only_recent_hours_and_windows_score_each_hour(tabular: Path, tmp_path: Path) -> None:
    """Three hours of traffic; the last hour is shifted. --since picks hours, windows show when drift began."""
    payloads = []
    for hour in range(3):
        rows = current_rows(1500, 10 + hour)
        if hour == 2:
            rows["b"] = [v + 2.0 for v in rows["b"]]
        payloads += records_payloads(rows, T0 + hour * HOUR, spacing=2.0)
    write_capture(tmp_path / "capture", payloads)
    assert len(list((tmp_path / "capture").rglob("*.jsonl"))) == 3  # YYYY/MM/DD/HH/ rotation
    now = T0 + 3 * HOUR
    everything = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "all", now=now)
    assert everything.rows == 4500
    windows = everything.drift["windows"]
    assert [w["rows"] for w in windows] == [1500, 1500, 1500]
    assert [w["scores"]["b"] > 0.1 for w in windows] == [False, False, True]
    recent = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "recent", since="1h", now=now)
    assert recent.rows == 1500
    assert pairs(recent.violations) == {("b", "baseline_drift_check")}
    older = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "older", until="1h", now=now)
    assert older.rows == 3000 and older.violations == []


def test_per_feature_thresholds_from_constraints_and_from_the_command_line(tabular: Path, tmp_path: Path) -> None:
    rows = current_rows(4000, 5)
    rows["b"] = [v + 0.4 for v in rows["b"]]  # 0.2 σ
    write_capture(tmp_path / "capture", records_payloads(rows, T0))
    default = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "o1")
    assert pairs(default.violations) == {("b", "baseline_drift_check")}
    loose = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "o2", thresholds={"b": 0.5})
    assert loose.violations == []
    # the same, written into constraints.json as a per-feature override
    constraints_path = tabular / "baseline" / "constraints.json"
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "statistics.json").write_bytes((tabular / "baseline" / "statistics.json").read_bytes())
    constraints = orjson.loads(constraints_path.read_bytes())
    for feature in constraints["features"]:
        if feature["name"] == "b":
            feature["monitoringConfigOverrides"] = {"comparison_method": "psi", "comparison_threshold": 0.5}
    (edited / "constraints.json").write_bytes(orjson.dumps(constraints))
    overridden = run_check(tmp_path / "capture", edited, tmp_path / "o3")
    b = next(f for f in overridden.drift["features"] if f["name"] == "b")
    assert (b["method"], b["threshold"], b["drifted"]) == ("psi", 0.5, False)
    assert overridden.violations == []


def test_detection_defaults_flag_exactly_the_drifted_features(tmp_path: Path) -> None:
    """The issue's scenario at a twentieth of its size: 64 features, 8 shifted by 0.3 σ, one scaled × 1.5."""
    rng = np.random.default_rng(11)

    def make(n: int, drift: bool) -> pa.Table:
        columns = {}
        for i in range(64):
            x = [rng.standard_normal(n), rng.lognormal(0, 0.5, n), rng.uniform(-1, 1, n), rng.gamma(2.0, 1.0, n)][i % 4]
            if drift and i < 8:
                x = x + 0.3 * x.std()
            if drift and i == 8:
                x = (x - x.mean()) * 1.5 + x.mean()
            columns[f"f{i:02d}"] = x
        return pa.table(columns)

    pq.write_table(make(10_000, False), tmp_path / "reference.parquet")
    pq.write_table(make(50_000, True), tmp_path / "current.parquet")
    make_baseline(tmp_path / "reference.parquet", tmp_path / "baseline")
    result = run_check(tmp_path / "current.parquet", tmp_path / "baseline", tmp_path / "out")
    assert sorted(result.drifted) == [f"f{i:02d}" for i in range(9)]
    quiet = max(f["score"] for f in result.drift["features"] if f["name"] not in result.drifted)
    assert quiet < 0.05  # far below the 0.1 threshold: noise at this size


def test_csv_input_with_and_without_header(tabular: Path, tmp_path: Path) -> None:
    rows = current_rows(2000, 8)
    header = ",".join(rows) + "\n"
    body = "".join(",".join(str(rows[k][i]) for k in rows) + "\n" for i in range(2000))
    (tmp_path / "with.csv").write_text(header + body)
    assert run_check(tmp_path / "with.csv", tabular / "baseline", tmp_path / "o1").violations == []
    # captured CSV payloads carry no names: columns map to the baseline's features by position
    payloads = [(T0 + i, "text/csv", line.encode()) for i, line in enumerate(body.splitlines())]
    write_capture(tmp_path / "capture", payloads)
    assert run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "o2").violations == []


def test_a_feature_its_constraints_type_integral_counts_values_that_are_not_whole(tmp_path: Path) -> None:
    """Whole numbers are counted where the data type check reads them: where constraints.json says Integral,
    whatever statistics.json says (a user may tighten a Fractional feature's constraints by hand)."""
    rng = np.random.default_rng(7)
    train = pa.table({"n": pa.array(rng.integers(0, 50, 2000).astype(np.float64)), "x": rng.normal(0, 1, 2000)})
    pq.write_table(train, tmp_path / "train.parquet")
    make_baseline(tmp_path / "train.parquet", tmp_path / "baseline")
    statistics = orjson.loads((tmp_path / "baseline" / "statistics.json").read_bytes())
    assert {f["name"]: f["inferred_type"] for f in statistics["features"]} == {"n": "Fractional", "x": "Fractional"}
    constraints_path = tmp_path / "baseline" / "constraints.json"
    constraints = orjson.loads(constraints_path.read_bytes())
    for feature in constraints["features"]:
        if feature["name"] == "n":
            feature["inferred_type"] = "Integral"
    constraints_path.write_bytes(orjson.dumps(constraints))

    values = rng.integers(0, 50, 1000).astype(np.float64)
    values[::10] += 0.5  # 10 % not whole
    pq.write_table(pa.table({"n": values, "x": rng.normal(0, 1, 1000)}), tmp_path / "current.parquet")
    result = run_check(tmp_path / "current.parquet", tmp_path / "baseline", tmp_path / "out", window=None)
    (data_type,) = [v for v in result.violations if v["constraint_check_type"] == "data_type_check"]
    assert data_type["feature_name"] == "n"
    assert (data_type["values_mismatched"], data_type["values_checked"]) == (100, 1000)


def test_whole_numbers_are_counted_only_for_a_check_against_integral() -> None:
    """The pass over every chunk that finds values that are not whole runs only where its count is read."""
    from shipyard.monitor.profile import NumericProfile
    from shipyard.monitor.profiler import Profiler
    from shipyard.monitor.sources import Chunk

    chunk = Chunk(pa.table({"i": [1.0, 2.5, 3.5], "f": [1.0, 2.5, 3.5]}))
    check = Profiler({"i": "integer", "f": "numeric"})
    baseline = Profiler()
    for profiler in (check, baseline):
        profiler.add(chunk)
    counted = {
        (which, name): (profile.track_integers, profile.non_integer)
        for which, profiler in (("check", check), ("baseline", baseline))
        for name, profile in profiler.profiles.items()
        if isinstance(profile, NumericProfile)
    }
    assert counted == {
        ("check", "i"): (True, 2),
        ("check", "f"): (False, 0),
        ("baseline", "i"): (False, 0),
        ("baseline", "f"): (False, 0),
    }
