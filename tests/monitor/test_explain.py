"""``monitor explain``: Clarify's explainability files from a bundle loaded in process.

- explain_analysis: the analysis.json document (labels, expected values, each agg method over the local values);
- choose_baseline: the mean row, or seeded K-means centres;
- run_explain on a small named-feature bundle, with every coalition enumerated: equal to shap's
  KernelExplainer on the same predict function and baseline.csv (identity and logit, two outputs);
- run_explain and the CLI on the real digits bundle: every file written, out.csv summing to
  prediction − expected value row by row, a baseline file read back, the errors worded with the options.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.cli import shipyard
from shipyard.errors import MonitorError
from shipyard.monitor.explain import bundle_predictor, choose_baseline, explain_analysis, run_explain

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _valid(document: dict[str, object]) -> None:
    jsonschema.validate(document, json.loads((DOCS / "monitor" / "explain_analysis.schema.json").read_text()))


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open() as stream:
        lines = list(csv.reader(stream))
    return lines[0], np.array(lines[1:], dtype=np.float64)


@pytest.fixture(scope="module")
def digits_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits test rows as Parquet, pixel columns then a label column the model does not take."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("explain") / "digits.parquet"
    table = pa.table({f"pixel_{i}": x[-60:, i] for i in range(64)}).append_column("label", pa.array(y[-60:]))
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A LogisticRegression's predict_proba on 7 named features of breast-cancer data, and a CSV of rows."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import shipyard

    data = load_breast_cancer()
    x, y = data.data[:, :7], data.target
    names = [n.replace(" ", "_") for n in data.feature_names[:7]]
    model = LogisticRegression(max_iter=5000).fit(x, y)
    root = tmp_path_factory.mktemp("small")
    bundle = shipyard.save(model, root / "bundle", example=x[:3], method="predict_proba", feature_names=names)
    rows = root / "rows.csv"
    order = [6, 0, 3, 5, 1, 2, 4]  # the file's columns in another order than the model's, and one more column
    header = ["extra", *[names[i] for i in order]]
    body = [[str(v) for v in [k, *x[k, order]]] for k in range(40)]
    rows.write_text("\n".join(",".join(r) for r in [header, *body]) + "\n")
    return bundle.path, rows


def test_the_analysis_document_and_its_agg_methods() -> None:
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(4, 2))
    rows, baseline = rng.normal(size=(30, 4)), rng.normal(size=(2, 4))
    document, local = explain_analysis(lambda x: x @ coef, rows, ["a", "b", "c", "d"], baseline, samples=14)
    _valid(document)
    assert document["version"] == "1.0" and list(document["explanations"]["kernel_shap"]) == ["label0", "label1"]
    assert local.shape == (30, 4, 2)
    for k, entry in enumerate(document["explanations"]["kernel_shap"].values()):
        assert entry["expected_value"] == pytest.approx(float((baseline @ coef[:, k]).mean()))
        assert list(entry["global_shap_values"].values()) == pytest.approx(np.abs(local[:, :, k]).mean(axis=0))
    for agg, expected in [("median", np.median(local, axis=0)), ("mean_sq", (local**2).mean(axis=0))]:
        other, again = explain_analysis(
            lambda x: x @ coef, rows, ["a", "b", "c", "d"], baseline, samples=14, agg=agg, label_headers=["p", "q"]
        )
        assert np.array_equal(again, local)
        entry = other["explanations"]["kernel_shap"]["q"]
        assert list(entry["global_shap_values"].values()) == pytest.approx(expected[:, 1])
    assert min(other["explanations"]["kernel_shap"]["p"]["global_shap_values"].values()) >= 0  # mean_sq
    signed, _ = explain_analysis(lambda x: x @ coef, rows, list("abcd"), baseline, samples=14, agg="median")
    assert min(signed["explanations"]["kernel_shap"]["label0"]["global_shap_values"].values()) < 0  # median: signed
    with pytest.raises(MonitorError, match="agg 'max': use one of mean_abs, median, mean_sq"):
        explain_analysis(lambda x: x @ coef, rows, list("abcd"), baseline, agg="max")
    with pytest.raises(MonitorError, match="label_headers p: the model gives 2 outputs per row, so name 2"):
        explain_analysis(lambda x: x @ coef, rows, list("abcd"), baseline, label_headers=["p"])
    with pytest.raises(MonitorError, match="use_logit: the logit needs model outputs strictly between 0 and 1"):
        explain_analysis(lambda x: x @ coef, rows, list("abcd"), baseline, use_logit=True)


def test_choose_baseline_is_the_mean_row_or_seeded_k_means() -> None:
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.normal(0, 0.1, size=(50, 3)), rng.normal(5, 0.1, size=(50, 3))])
    assert np.allclose(choose_baseline(rows, 1), rows.mean(axis=0, keepdims=True))
    two = choose_baseline(rows, 2, seed=3)
    assert two.shape == (2, 3) and np.array_equal(two, choose_baseline(rows, 2, seed=3))
    assert sorted(np.round(two[:, 0]).tolist()) == [0.0, 5.0]  # one centre in each cluster
    assert choose_baseline(rows[:3], 5).shape == (3, 3)  # no more centres than distinct rows
    with pytest.raises(MonitorError, match="baseline 0: give a number"):
        choose_baseline(rows, 0)


@pytest.mark.parametrize("logit", [False, True])
def test_run_explain_equals_shap_on_a_bundle(small_bundle: tuple[Path, Path], tmp_path: Path, logit: bool) -> None:
    import shap

    bundle, rows_csv = small_bundle
    result = run_explain(bundle, rows_csv, tmp_path, baseline=3, samples=126, use_logit=logit, seed=2, max_rows=12)
    _valid(result.document)
    assert result.features == ["mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_smoothness",
                               "mean_compactness", "mean_concavity"]  # fmt: skip
    assert result.labels == ["label0", "label1"] and result.samples == 126 and result.rows == 12
    header, baseline = _read_csv(tmp_path / "explanations_shap" / "baseline.csv")
    assert header == result.features and baseline.shape == (3, 7)
    predict, names = bundle_predictor(bundle)
    assert names == result.features
    from shipyard.monitor.explain import _read_rows
    from shipyard.monitor.problems import Problems

    rows, _ = _read_rows(rows_csv, names, 7, Problems(), limit=12)
    explainer = shap.KernelExplainer(predict, baseline, link="logit" if logit else "identity")
    np.random.seed(0)
    want = np.asarray(explainer.shap_values(rows, nsamples=126, l1_reg=0, silent=True))  # (rows, M, K)
    np.testing.assert_allclose(result.local, want, rtol=0, atol=1e-9)
    expected = [e["expected_value"] for e in result.document["explanations"]["kernel_shap"].values()]
    np.testing.assert_allclose(expected, explainer.expected_value, rtol=0, atol=1e-12)
    header, local = _read_csv(tmp_path / "explanations_shap" / "out.csv")
    assert header[:2] == ["mean_radius_label0", "mean_texture_label0"] and header[7] == "mean_radius_label1"
    np.testing.assert_array_equal(local, result.local.transpose(0, 2, 1).reshape(12, 14))  # written exactly


def test_run_explain_on_digits_writes_clarifys_files(digits_bundle: Path, digits_parquet: Path, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    result = run_explain(
        digits_bundle,
        digits_parquet,
        tmp_path,
        samples=60,
        max_rows=8,
        seed=1,
        progress=lambda d, t: progress.append((d, t)),
    )
    _valid(result.document)
    assert result.features == [f"pixel_{i}" for i in range(64)]  # the label column is not a feature
    assert progress[-1] == (8, 8)
    entry = result.document["explanations"]["kernel_shap"]["label0"]
    predict, _ = bundle_predictor(digits_bundle)
    header, local = _read_csv(tmp_path / "explanations_shap" / "out.csv")
    assert header == [f"pixel_{i}_label0" for i in range(64)] and local.shape == (8, 64)
    rows = pq.read_table(digits_parquet).drop(["label"]).to_pandas().to_numpy()[:8]
    np.testing.assert_allclose(local.sum(axis=1), predict(rows) - entry["expected_value"], atol=1e-9)
    _, baseline = _read_csv(tmp_path / "explanations_shap" / "baseline.csv")
    all_rows = pq.read_table(digits_parquet).drop(["label"]).to_pandas().to_numpy()
    np.testing.assert_allclose(baseline, all_rows.mean(axis=0, keepdims=True))  # the mean of all rows read
    assert entry["expected_value"] == pytest.approx(float(predict(baseline)[0]))
    assert (tmp_path / "global_shap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the baseline file back in (with its header, and without one as Clarify takes it): the same values
    written = tmp_path / "explanations_shap" / "baseline.csv"
    again = run_explain(
        digits_bundle, digits_parquet, tmp_path / "again", baseline=written, samples=60, max_rows=8, seed=1
    )
    assert np.array_equal(again.local, result.local)
    bare = tmp_path / "bare.csv"
    bare.write_text("\n".join((tmp_path / "explanations_shap" / "baseline.csv").read_text().splitlines()[1:]) + "\n")
    headerless = run_explain(
        digits_bundle, digits_parquet, tmp_path / "bare", baseline=bare, samples=60, max_rows=8, seed=1
    )
    assert np.array_equal(headerless.local, result.local)


def test_the_cli_explains_digits(digits_bundle: Path, digits_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = shipyard(
        "monitor", "explain", str(digits_bundle), str(digits_parquet), "--rows", "5", "--samples", "40",
        "--baseline", "3", "--agg", "median", "--seed", "7", "--label-headers", "digit", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Kernel SHAP of 5 rows against 3 baseline rows, up to 40 coalitions a row" in done.stdout
    assert "digit (expected value" in done.stdout and "SHAP (median)" in done.stdout
    for name in ("analysis.json", "explanations_shap/out.csv", "explanations_shap/baseline.csv", "global_shap.png"):
        assert (out / name).is_file(), name
    document = json.loads((out / "analysis.json").read_text())
    _valid(document)
    entry = document["explanations"]["kernel_shap"]["digit"]
    header, local = _read_csv(out / "explanations_shap" / "out.csv")
    assert header[0] == "pixel_0_digit" and local.shape == (5, 64)
    assert list(entry["global_shap_values"].values()) == pytest.approx(np.median(local, axis=0).tolist())
    predict, _ = bundle_predictor(digits_bundle)
    rows = pq.read_table(digits_parquet).drop(["label"]).to_pandas().to_numpy()[:5]
    np.testing.assert_allclose(local.sum(axis=1), predict(rows) - entry["expected_value"], atol=1e-9)
    assert _read_csv(out / "explanations_shap" / "baseline.csv")[1].shape == (3, 64)

    bad = shipyard("monitor", "explain", str(digits_bundle), str(digits_parquet), "--agg", "max", "--out", str(out))
    assert bad.returncode == 2 and "--agg 'max': use one of mean_abs, median, mean_sq" in bad.stderr
    wrong = shipyard(
        "monitor", "explain", str(digits_bundle), str(digits_parquet), "--label-headers", "a,b", "--rows", "1",
        "--samples", "4", "--out", str(out),
    )  # fmt: skip
    assert wrong.returncode == 2 and "--label-headers a,b: the model gives 1 outputs per row" in wrong.stderr
    missing = shipyard(
        "monitor", "explain", str(digits_bundle), str(digits_parquet), "--baseline", str(tmp_path / "no.csv")
    )
    said = " ".join(missing.stderr.split())  # the console wraps long lines at its width, anywhere in the path
    assert missing.returncode == 2 and "--baseline" in said and "no such file" in said


@pytest.fixture(scope="module")
def linear_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, float]:
    """A LinearRegression on 5 features of breast-cancer data (a bundle), its coefficients, intercept and rows."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LinearRegression

    import shipyard

    data = load_breast_cancer()
    x, y = data.data[:, [0, 1, 4, 7, 9]], data.data[:, 3]
    model = LinearRegression().fit(x, y)
    root = tmp_path_factory.mktemp("linear")
    names = ["radius", "texture", "smoothness", "concave_points", "fractal_dimension"]
    bundle = shipyard.save(model, root / "bundle", example=x[:3], feature_names=names)
    return bundle.path, x, np.asarray(model.coef_), float(model.intercept_)


def test_a_linear_bundle_equals_shap_and_the_closed_form(
    linear_bundle: tuple[Path, np.ndarray, np.ndarray, float], tmp_path: Path
) -> None:
    """run_explain on a linear model (every coalition enumerated, M = 5): its SHAP values, shap's
    KernelExplainer(l1_reg=0) on x @ coef + b, and (x − mean baseline) · coef, all within 1e-9."""
    import shap

    bundle, x, coef, intercept = linear_bundle
    names = ["radius", "texture", "smoothness", "concave_points", "fractal_dimension"]
    rows_path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({n: x[:30, i] for i, n in enumerate(names)}), rows_path)
    result = run_explain(bundle, rows_path, tmp_path / "out", baseline=3, samples=30, seed=4)
    baseline = result.baseline
    explainer = shap.KernelExplainer(lambda rows: rows @ coef + intercept, baseline)
    np.random.seed(0)
    want = np.asarray(explainer.shap_values(x[:30], nsamples=30, l1_reg=0, silent=True)).reshape(30, 5)
    exact = (x[:30] - baseline.mean(axis=0)) * coef
    np.testing.assert_allclose(result.local[:, :, 0], want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.local[:, :, 0], exact, rtol=0, atol=1e-9)
    expected = result.document["explanations"]["kernel_shap"]["label0"]["expected_value"]
    assert expected == pytest.approx(float(np.mean(baseline @ coef + intercept)), abs=1e-9)


def test_odd_inputs_are_worded_and_few_coalitions_warned(
    linear_bundle: tuple[Path, np.ndarray, np.ndarray, float], tmp_path: Path
) -> None:
    """A header without rows holds no rows; a missing value names the file, its data row and column;
    --samples under M + 1 is a problem (φ of some feature would be 0 whatever the model); report.html."""
    bundle, x, _, _ = linear_bundle
    header = "radius,texture,smoothness,concave_points,fractal_dimension"
    empty = tmp_path / "empty.csv"
    empty.write_text(header + "\n")
    with pytest.raises(MonitorError, match=r"empty\.csv: holds no rows"):
        run_explain(bundle, empty, tmp_path / "e")
    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    with pytest.raises(MonitorError, match=r"zero\.csv"):
        run_explain(bundle, zero, tmp_path / "z")
    gap = tmp_path / "gap.csv"
    lines = [",".join(repr(float(v)) for v in row) for row in x[:6]]
    lines[2] = "," + lines[2].split(",", 1)[1]  # data row 3: radius missing
    gap.write_text("\n".join([header, *lines]) + "\n")
    with pytest.raises(MonitorError, match=r"gap\.csv: data row 3 \(after the header\), column 'radius': nan"):
        run_explain(bundle, gap, tmp_path / "g")
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join([header, *[",".join(repr(float(v)) for v in r) for r in x[:10]]]) + "\n")
    few = run_explain(bundle, rows, tmp_path / "few", samples=2)
    assert any("--samples 2 is under M + 1 = 6" in line for line in few.problems.summary())
    enough = run_explain(bundle, rows, tmp_path / "enough", samples=6)
    assert not enough.problems.summary()
    page = (tmp_path / "enough" / "report.html").read_text()
    assert enough.files["report"] == tmp_path / "enough" / "report.html" and "SHAP" in page
