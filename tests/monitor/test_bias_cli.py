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
    done = shipyard(*args, "--group-by", "region", "--out", str(out), env={"COLUMNS": "200"})
    assert done.returncode == 3, done.stderr
    assert "gender=female DI" in done.stdout and "violations" in done.stdout
    assert json.loads((out / "bias_violations.json").read_text())["violations"]

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
