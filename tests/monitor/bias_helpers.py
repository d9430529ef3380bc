"""Data sets for the bias tests, and smclarify (the reference) run on them in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.monitor.columns import read_table, table_columns

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("clarify_ref.py")


def clarify_ref_dir() -> Path:
    """``<repo>/.clarify-ref`` (smclarify), made by scripts/clarify-ref.sh (which does nothing when it holds the
    lock's packages already)."""
    env = {**os.environ, "SHIPYARD_VENV": str(Path(sys.executable).parents[1])}
    subprocess.run(["bash", str(REPO / "scripts" / "clarify-ref.sh")], check=True, env=env)
    return REPO / ".clarify-ref"


def smclarify(cases: list[dict[str, Any]], tmp: Path, reference: Path) -> list[dict[str, Any]]:
    """bias_report's answers to ``cases`` (see clarify_ref.py), all in one subprocess; ``reference``: the
    directory smclarify is installed in (:func:`clarify_ref_dir`)."""
    config = tmp / f"cases-{len(list(tmp.glob('cases-*.json')))}.json"
    config.write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": str(reference)}
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(config)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def columns_of(path: Path, drop: list[str] | None = None) -> dict[str, np.ndarray]:
    """A Parquet (or CSV) file's columns as Shipyard's run_bias reads them (monitor.columns.read_table)."""
    table = read_table(path)
    return {name: values for name, values in table_columns(table).items() if name not in (drop or [])}


def write(table: dict[str, Any], path: Path) -> Path:
    pq.write_table(pa.table(table), path)
    return path


def planted(rng: np.random.Generator, n: int = 4000, nan_share: float = 0.0) -> dict[str, Any]:
    """Text facet 'gender' with a planted disparity in labels and predictions; text group 'region'."""
    gender = np.where(rng.random(n) < 0.6, "male", "female").astype(object)
    if nan_share:
        gender[rng.random(n) < nan_share] = None
    rate = np.where(gender == "male", 0.6, 0.3)
    y = (rng.random(n) < rate).astype(np.int64)
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)
    pred[(gender == "female") & (rng.random(n) < 0.3)] = 0
    region = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n)
    return {"gender": gender, "region": region, "x1": rng.normal(size=n), "y": y, "pred": pred.astype(np.int64)}


def adult_like(rng: np.random.Generator, n: int = 3000) -> dict[str, Any]:
    """Numeric only (for FT): sex 0/1, race 0–4, age (float), features from make_classification, and a
    logistic model's predictions."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=n, n_features=5, n_informative=3, random_state=int(rng.integers(1000)))
    sex = (rng.random(n) < 0.35).astype(np.int64)
    race = rng.choice(5, n, p=[0.6, 0.15, 0.1, 0.1, 0.05]).astype(np.int64)
    age = np.round(rng.uniform(18, 80, n), 1)
    y = np.where((sex == 1) & (rng.random(n) < 0.2), 0, y).astype(np.int64)
    model = LogisticRegression().fit(np.column_stack([x, sex, age]), y)
    pred = model.predict(np.column_stack([x, sex, age])).astype(np.int64)
    data: dict[str, Any] = {f"f{i}": x[:, i] for i in range(5)}
    return {**data, "sex": sex, "race": race, "age": age, "y": y, "pred": pred}


def write_csv(table: dict[str, Any], path: Path) -> Path:
    """The columns as CSV, a missing value an empty cell (as pandas.to_csv writes it)."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.table(table), path, pacsv.WriteOptions(quoting_style="none"))
    return path


def breast_cancer() -> dict[str, Any]:
    """scikit-learn's breast cancer data (real, 569 rows, 30 numeric features): label ``y`` the target, the facet
    ``big`` 1 where 'mean radius' is above its median, ``pred`` a LogisticRegression's predictions on the
    features (fit here, on standardised features)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    x, y = data.data, data.target.astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    columns: dict[str, Any] = {str(name): x[:, i] for i, name in enumerate(data.feature_names)}
    radius = columns["mean radius"]
    columns["big"] = (radius > np.median(radius)).astype(np.int64)
    columns["y"] = y
    columns["pred"] = model.predict(x).astype(np.int64)
    return columns
