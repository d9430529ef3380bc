"""``shipyard monitor bias`` through the console script: exit 3 on a planted disparity, 0 on fair data, 2 on
bad input; ``--bundle`` predicts in process; CSV and JSON Lines read as Parquet is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from bias_helpers import planted, write

from infra.cli import shipyard


@pytest.mark.integration
def test_exit_3_on_a_planted_disparity_0_when_fair_2_on_bad_input(tmp_path: Path) -> None:
    data = write(planted(np.random.default_rng(1)), tmp_path / "planted.parquet")
    out = tmp_path / "out"
    args = ("monitor", "bias", str(data), "--label", "y", "--facet", "gender=female", "--predicted", "pred")
    done = shipyard(*args, "--group-by", "region", "--out", str(out), env={"COLUMNS": "80"})
    assert done.returncode == 3, done.stderr
    assert "gender=female DI" in done.stdout and "violations" in done.stdout
    assert json.loads((out / "bias_violations.json").read_text())["violations"]
    # readable at 80 columns: a row per metric, its name, description and value uncut
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    document = json.loads((out / "analysis.json").read_text())
    for section in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for metric in document[section]["facets"]["gender"][0]["metrics"]:
            row = next(line for line in done.stdout.splitlines() if line.startswith(f"│ {metric['name']} "))
            if metric["value"] is not None:
                assert f"{metric['value']:.4g}" in row, (metric, row)
    assert "│ DI     │ Disparate Impact" in done.stdout and "…" not in done.stdout
    # and the HTML report, as `monitor report OUT` writes it
    page = (out / "report.html").read_text()
    assert f"report: {out / 'report.html'}" in done.stdout.replace("\n", "")
    assert "<h2>Bias</h2>" in page and "Facet gender = female" in page and "violation" in page

    rng = np.random.default_rng(2)
    n = 6000
    fair = {
        "gender": np.where(rng.random(n) < 0.4, "female", "male").astype(object),
        "y": (rng.random(n) < 0.5).astype(np.int64),
    }
    fair["pred"] = np.where(rng.random(n) < 0.85, fair["y"], 1 - fair["y"])
    csv = tmp_path / "fair.csv"
    pacsv.write_csv(pa.table(fair), csv)
    done = shipyard("monitor", "bias", str(csv), "-l", "y", "-f", "gender", "--predicted", "pred", "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no violations" in done.stdout

    missing = shipyard("monitor", "bias", str(csv), "-l", "y", "-f", "sex", "-o", str(out))
    assert missing.returncode == 2 and "--facet sex: no such column" in missing.stderr
    bad = shipyard("monitor", "bias", str(csv), "-l", "y", "-f", "gender", "-t", "DI=high", "-o", str(out))
    assert bad.returncode == 2 and "METRIC=LOW:HIGH" in bad.stderr


@pytest.mark.integration
def test_bad_files_and_predictions_exit_2(tmp_path: Path) -> None:
    """A 0-byte file, a header without rows, predictions not typed like the label or naming another column:
    exit 2 with the file or the columns named, never a traceback or a false exit 3."""
    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    header = tmp_path / "header.csv"
    header.write_text("gender,y,pred\n")
    rng = np.random.default_rng(5)
    words = {
        "gender": np.where(rng.random(400) < 0.5, "female", "male").astype(object),
        "y": np.where(rng.random(400) < 0.5, "yes", "no").astype(object),
        "pred": rng.integers(0, 2, 400),
    }
    text = tmp_path / "strlabel.csv"
    pacsv.write_csv(pa.table(words), text)
    out = str(tmp_path / "out")
    for args, wanted in (
        ((str(zero), "-l", "y", "-f", "gender"), "zero.csv: cannot read its columns (the file is empty)"),
        ((str(header), "-l", "y", "-f", "gender"), "header.csv: holds no rows"),
        ((str(text), "-l", "y", "-f", "gender=female", "--positive", "yes", "--predicted", "pred"),
         "--predicted pred: the predictions are numbers, the label text"),
        ((str(text), "-l", "y", "-f", "gender=female", "--positive", "yes", "--predicted", "gender"),
         "--predicted gender: no prediction is a positive label value (yes)"),
    ):  # fmt: skip
        done = shipyard("monitor", "bias", *args, "-o", out, env={"COLUMNS": "200"})
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert wanted in done.stderr and "Traceback" not in done.stderr, (wanted, done.stderr)
    baseline = shipyard(
        "monitor", "baseline", str(zero), "--out", out, "--bias", "--label", "y", "--facet", "gender",
        "--predicted", "pred", env={"COLUMNS": "200"},
    )  # fmt: skip
    assert baseline.returncode == 2 and "zero.csv" in baseline.stderr and "Traceback" not in baseline.stderr


@pytest.mark.integration
def test_bundle_predicts_in_process(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import shipyard as sy

    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=(n, 3))
    group = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    x[group == "b", 0] -= 1.0  # the model's scores differ between the groups
    y = (x[:, 0] + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    bundle = sy.save(LogisticRegression().fit(frame, y), tmp_path / "bundle", example=frame[:3], name="b", version="1")
    path = tmp_path / "data.jsonl"
    rows = [{"x0": a, "x1": b, "x2": c, "g": g, "y": int(t)} for (a, b, c), g, t in zip(x, group, y, strict=True)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    done = shipyard(
        "monitor", "bias", str(path), "-l", "y", "-f", "g=b", "--bundle", str(bundle.path), "-o", str(out),
        "--output", "json",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    assert document["post_training"] is True
    values = {(m["stage"], m["metric"]): m["value"] for m in document["metrics"]}
    predicted = LogisticRegression().fit(frame, y).predict(frame)
    expected = np.mean(predicted[group == "a"]) - np.mean(predicted[group == "b"])
    assert values[("post_training", "DPPL")] == pytest.approx(expected, abs=1e-12)
    assert isinstance(values[("post_training", "FT")], float)  # numbers only once the text facet is left out


@pytest.mark.integration
def test_many_facet_values_a_row_per_value_and_metric_at_80_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    data = {
        "race": rng.choice(np.array(list("abcde"), dtype=object), 2000),
        "y": rng.integers(0, 2, 2000),
        "pred": rng.integers(0, 2, 2000),
    }
    csv = tmp_path / "race.csv"
    pacsv.write_csv(pa.table(data), csv)
    out = tmp_path / "out"
    done = shipyard(
        "monitor", "bias", str(csv), "-l", "y", "-f", "race", "--predicted", "pred", "-o", str(out),
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in done.stdout
    document = json.loads((out / "analysis.json").read_text())
    for entry in document["post_training_bias_metrics"]["facets"]["race"]:
        assert any(line.startswith(f"│ {entry['value_or_threshold']} (") for line in lines), entry["value_or_threshold"]
        di = next(m for m in entry["metrics"] if m["name"] == "DI")
        assert any(f"│ DI     │ {di['value']:.4g}".replace(" ", "") in line.replace(" ", "") for line in lines)
