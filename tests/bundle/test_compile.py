"""shipyard.save(compile=…) and compile_bundle: scikit-learn models served as ONNX after an equivalence check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard
from shipyard.bundle import Bundle
from shipyard.bundle.manifest import Manifest
from shipyard.cli.bundle import describe
from shipyard.errors import BundleError
from shipyard.handler.compile import compile_bundle
from shipyard.handler.compile.check import generate_rows
from shipyard.handler.flavors import flavor_module

pytest.importorskip("skl2onnx")


class Clip(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom transformer skl2onnx has no converter for."""

    def fit(self, X: Any, y: Any = None) -> Clip:
        return self

    def transform(self, X: Any) -> Any:
        return np.clip(X, 0, 15)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def lr(digits: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    X, y = digits
    return LogisticRegression(max_iter=200).fit(X[:1200], y[:1200])


def predict(path: Path, rows: Any, method: str | None = None) -> Any:
    bundle = Bundle.open(path)
    manifest = bundle.manifest
    if method:
        manifest = Manifest(**{**manifest.__dict__, "options": {**manifest.options, "method": method}})
    inputs, _ = manifest.input.coerce(rows)
    return flavor_module(manifest.flavor).load(bundle.path, manifest)(inputs)


@pytest.mark.parametrize("kind", ["lr", "pipeline", "forest"])
def test_classifiers_are_served_as_onnx_with_labels_and_probabilities(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression, kind: str
) -> None:
    X, y = digits
    model = {
        "lr": lambda: lr,
        "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X[:1200], y[:1200]),
        "forest": lambda: RandomForestClassifier(20, random_state=0).fit(X[:1200], y[:1200]),
    }[kind]()
    bundle = shipyard.save(model, tmp_path / kind, example=X[:5], compile="onnx", held_out=X[1200:], check_rows=300)
    manifest = bundle.manifest
    assert (manifest.flavor, manifest.artifact) == ("onnx", "model/model.onnx")
    assert manifest.options == {"method": "predict", "outputs": {"predict": "label", "predict_proba": "probabilities"}}
    compiled = manifest.compiled
    assert compiled["status"] == "onnx" and compiled["source_flavor"] == "sklearn"
    assert compiled["source_artifact"] == "model/model.joblib" and (bundle.path / "model/model.joblib").is_file()
    assert any(r.startswith("scikit-learn==") for r in compiled["source_requirements"])
    check = compiled["check"]
    assert check["rows"] == 5 + 300 + len(X) - 1200
    assert check["methods"] == ["predict", "predict_proba"] and check["labels_equal"] is True
    assert 0 <= check["max_abs_error"] <= check["tolerance"] and check["first_difference"] == ""
    assert compiled["sizes"]["onnx_bytes"] == (bundle.path / "model/model.onnx").stat().st_size
    assert compiled["sizes"]["source_bytes"] == (bundle.path / "model/model.joblib").stat().st_size
    requirements = bundle.requirements()
    assert [r.split("==")[0] for r in requirements] == ["numpy", "onnxruntime"]
    assert np.array_equal(predict(bundle.path, X[1200:]), model.predict(X[1200:]))
    probabilities = predict(bundle.path, X[1200:], "predict_proba")
    assert np.allclose(probabilities, model.predict_proba(X[1200:]), atol=1e-5)
    example = orjson.loads((bundle.path / "example.json").read_bytes())
    native = orjson.loads((bundle.path / "example.native.json").read_bytes())
    assert example["predictions"] == native["predictions"] == model.predict(X[:5]).tolist()
    assert Bundle.open(bundle.path).manifest == manifest  # the [compiled] table reads back


def test_string_labels_and_a_regressor(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    classifier = LogisticRegression(max_iter=200).fit(X[:800], names[y[:800]])
    bundle = shipyard.save(classifier, tmp_path / "names", example=X[:4], compile="onnx", check_rows=100)
    assert bundle.manifest.flavor == "onnx"
    assert list(predict(bundle.path, X[900:950])) == list(classifier.predict(X[900:950]))
    # the classes' own dtype, not a generic string array sized per answer: application/x-npy answers alike
    assert predict(bundle.path, X[900:902]).dtype == classifier.predict(X[900:902]).dtype == np.dtype("<U5")
    assert orjson.loads((bundle.path / "example.json").read_bytes())["predictions"][0] == classifier.predict(X[:1])[0]

    ridge = Ridge().fit(X[:800], y[:800].astype(float))
    served = shipyard.save(ridge, tmp_path / "ridge", example=X[:4], compile="onnx", check_rows=100)
    assert served.manifest.options["ravel"] == ["predict"]
    answers = predict(served.path, X[900:950])
    assert answers.shape == (50,) and np.allclose(answers, ridge.predict(X[900:950]))
    assert served.manifest.output["shape"] == [-1]


def test_a_custom_transformer_keeps_the_native_flavor_in_auto_and_fails_in_onnx(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    model = make_pipeline(Clip(), LogisticRegression(max_iter=200)).fit(X[:800], y[:800])
    bundle = shipyard.save(model, tmp_path / "auto", example=X[:4], compile="auto")
    manifest = bundle.manifest
    assert manifest.flavor == "sklearn" and manifest.artifact == "model/model.joblib"
    assert manifest.compiled["status"] == "native"
    assert manifest.compiled["reason"].startswith("MissingShapeCalculator: Unable to find a shape calculator")
    assert "\n" not in manifest.compiled["reason"]
    assert sorted(p.name for p in (bundle.path / "model").iterdir()) == ["model.joblib"]
    assert not (bundle.path / "example.native.json").exists()
    assert any(r.startswith("scikit-learn==") for r in bundle.requirements())
    shown = describe(bundle)["compiled"]  # what `shipyard inspect` shows
    assert shown["served"] == "native" and shown["reason"] == manifest.compiled["reason"]
    assert list(shown["forms"]) == ["native"] and shown["forms"]["native"]["artifact"] == "model/model.joblib"
    with pytest.raises(BundleError, match="compile='onnx': MissingShapeCalculator: Unable to find a shape"):
        shipyard.save(model, tmp_path / "onnx", example=X[:4], compile="onnx")
    assert not (tmp_path / "onnx").exists()


def test_a_conversion_that_differs_names_the_first_row(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in converter writes the graph of another model: onnx fails naming the row, auto falls back."""
    import shipyard.handler.compile.sklearn as converter

    X, y = digits
    other = LogisticRegression(max_iter=200).fit(X[:1200], np.roll(y[:1200], 1))
    real = converter.convert
    monkeypatch.setattr(converter, "convert", lambda model, bundle_dir, manifest: real(other, bundle_dir, manifest))
    first = int(np.flatnonzero(lr.predict(X[:5]) != other.predict(X[:5]))[0])
    expected = f"row {first} (example), predict: {lr.predict(X[first : first + 1])[0]} (native) vs "
    with pytest.raises(BundleError, match="^" + re.escape(f"compile='onnx': {expected}")):
        shipyard.save(lr, tmp_path / "onnx", example=X[:5], compile="onnx", check_rows=50)
    bundle = shipyard.save(lr, tmp_path / "auto", example=X[:5], compile="auto", check_rows=50)
    assert bundle.manifest.flavor == "sklearn" and bundle.manifest.compiled["reason"].startswith(expected)
    assert bundle.manifest.compiled["check"]["labels_equal"] is False
    assert not (bundle.path / "model/model.onnx").exists()


def test_a_forest_on_a_float32_graph_flips_a_tied_label_and_says_so(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """float32 sums of tied votes pick the other class (plan §2c): strict labels catch it, the reason says tie."""
    import shipyard.handler.compile.sklearn as converter

    X, y = digits
    forest = RandomForestClassifier(20, random_state=0).fit(X[:1200], y[:1200])
    monkeypatch.setattr(converter, "input_dtypes", lambda dtype: ("float32",))
    bundle = shipyard.save(forest, tmp_path / "rf", example=X[:5], compile="auto", check_rows=20_000)
    reason = bundle.manifest.compiled["reason"]
    assert bundle.manifest.flavor == "sklearn", "no tie flipped in 20,000 rows"
    assert reason.startswith("row ") and "(generated), predict:" in reason and "native scores tie at" in reason


def test_drop_original_and_columns_and_a_missing_converter(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = digits
    bundle = shipyard.save(lr, tmp_path / "dropped", example=X[:3], compile="onnx", drop_original=True, check_rows=20)
    assert sorted(p.name for p in (bundle.path / "model").iterdir()) == ["model.onnx"]
    assert bundle.manifest.compiled["source_artifact"] == "" and bundle.manifest.compiled["source_files"] == []
    assert not (bundle.path / "example.native.json").exists()
    with pytest.raises(BundleError, match="without its original"):
        bundle.manifest.as_native()

    import pandas as pd

    frame = pd.DataFrame(X[:200, :3], columns=["a", "b", "c"])
    table = LogisticRegression(max_iter=200).fit(frame, (X[:200, 2] > 5).astype(int))
    native = shipyard.save(table, tmp_path / "columns", example=frame[:3], compile="auto")
    assert native.manifest.flavor == "sklearn"
    assert native.manifest.compiled["reason"].startswith("DataFrame input (a columns schema) is not compiled")

    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # `import skl2onnx` raises ImportError
    missing = shipyard.save(lr, tmp_path / "missing", example=X[:3], compile="auto")
    assert missing.manifest.compiled["reason"] == "skl2onnx is not installed (pip install 'shipyard[compile]')"
    with pytest.raises(BundleError, match=r"skl2onnx is not installed"):
        shipyard.save(lr, tmp_path / "missing-onnx", example=X[:3], compile="onnx")
    with pytest.raises(BundleError, match="not a compile mode"):
        shipyard.save(lr, tmp_path / "bad", example=X[:3], compile="yes")


def test_compile_bundle_on_a_saved_native_bundle(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression
) -> None:
    X, _ = digits
    source = shipyard.save(lr, tmp_path / "native", example=X[:5]).path
    before = (source / "shipyard.toml").read_bytes()
    copy = compile_bundle(source, tmp_path / "copy", check_rows=100, held_out=X[1200:])
    assert copy.flavor == "onnx" and copy.compiled["check"]["rows"] == 5 + 100 + len(X) - 1200
    assert (source / "shipyard.toml").read_bytes() == before, "a target leaves the source as it was"
    assert Bundle.open(tmp_path / "copy").manifest == copy
    assert np.array_equal(predict(tmp_path / "copy", X[1200:]), lr.predict(X[1200:]))
    assert compile_bundle(tmp_path / "copy") == copy  # already compiled: as is

    in_place = compile_bundle(source, drop_original=True, check_rows=50)
    assert in_place.flavor == "onnx" and not (source / "model/model.joblib").exists()
    native = in_place.as_native  # dropped: no native form left
    with pytest.raises(BundleError, match="drop_original"):
        native()
    assert json.loads((source / "example.json").read_text())["predictions"] == lr.predict(X[:5]).tolist()


def test_as_native_and_a_manifest_without_compiled_reads_back_byte_identical(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression
) -> None:
    X, _ = digits
    plain = shipyard.save(lr, tmp_path / "plain", example=X[:3])
    text = (plain.path / "shipyard.toml").read_text()
    assert "[compiled]" not in text and plain.manifest.compiled == {}
    assert Manifest.parse(text.encode(), source="x", default_name="x").to_toml() == text
    with pytest.raises(BundleError, match="is not compiled"):
        plain.manifest.as_native()

    bundle = shipyard.save(lr, tmp_path / "compiled", example=X[:3], compile="onnx", check_rows=20)
    native = bundle.manifest.as_native()
    assert (native.flavor, native.artifact, native.options) == ("sklearn", "model/model.joblib", {"method": "predict"})
    assert native.compiled == bundle.manifest.compiled
    assert np.array_equal(flavor_module("sklearn").load(bundle.path, native)(X[:3]), lr.predict(X[:3]))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("compiled = 3", r"\[compiled\] must be a table"),
        ('[compiled]\nstatus = "maybe"', "status must be one of"),
        ('[compiled]\nstatus = "onnx"\nsource_flavor = 3', "source_flavor must be str"),
        ('[compiled]\nstatus = "native"\nsource_requirements = [1, 2]', "source_requirements must be a list of str"),
        ('[compiled]\nstatus = "native"\n[compiled.check]\nrows = "x"', r"\[compiled.check\] rows must be int"),
        ('[compiled]\nstatus = "native"\n[compiled.check]\nlabels_equal = 1', "labels_equal must be bool"),
        ('[compiled]\nstatus = "native"\ncheck = 5', "check must be dict"),
        ('[compiled]\nstatus = "onnx"\nsource_flavor = "sklearn"\n[compiled.sizes]\nonnx_bytes = -1', "byte count"),
        ('[compiled]\nstatus = "onnx"\nsource_flavor = "sklearn"\nsource_options = "x"', "source_options must be"),
    ],
)
def test_crafted_compiled_tables_are_refused(table: str, message: str) -> None:
    document = f'format = 1\n{"compiled = 3" if table == "compiled = 3" else ""}\n[model]\nflavor = "onnx"\n'
    if table != "compiled = 3":
        document += table + "\n"
    with pytest.raises(BundleError, match=message):
        Manifest.parse(document.encode(), source="crafted.toml", default_name="x")


def test_generated_rows_stay_in_the_ranges_and_keep_integers() -> None:
    from shipyard.bundle.schema import Schema

    wide = np.arange(0.0, 50.0, 2.0)  # 25 distinct integers: a range, not codes
    seen = [
        np.column_stack([wide, np.linspace(1.5, 2.5, 25), np.full(25, 3.0), np.tile([0.0, 10.0, 20.0, 10.0, 0.0], 5)])
    ]
    schema = Schema(kind="tensor", dtype="float64", shape=(-1, 4))
    rows = generate_rows(schema, seen, 2000, np.random.default_rng(0))
    assert rows is not None and rows.shape == (2000, 4) and rows.dtype == np.float64
    assert set(np.unique(rows[:, 0])) == set(np.arange(0.0, 49.0))  # an integral column: integers in [0, 48]
    assert rows[:, 1].min() >= 1.5 and rows[:, 1].max() <= 2.5 and len(np.unique(rows[:, 1])) > 100
    assert set(np.unique(rows[:, 2])) == {3.0}  # one integer value: a code, kept
    assert set(np.unique(rows[:, 3])) == {0.0, 10.0, 20.0}  # few integers: the codes seen, not the gaps
    assert np.array_equal(rows, generate_rows(schema, seen, 2000, np.random.default_rng(0)))
    flat = generate_rows(
        Schema(kind="tensor", dtype="float64", shape=(-1, 1)), [np.full((3, 1), 0.5)], 50, np.random.default_rng(0)
    )
    assert flat is not None and flat.min() < 0.5 < flat.max()  # one float value: widened around it
    assert generate_rows(Schema(kind="columns"), seen, 5, np.random.default_rng(0)) is None


def test_the_served_compiled_bundle_imports_no_sklearn_or_scipy(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression
) -> None:
    X, _ = digits
    bundle = shipyard.save(lr, tmp_path / "b", example=X[:3], compile="onnx", check_rows=20)
    script = (
        "import sys, numpy as np\n"
        "from shipyard.bundle import Bundle\n"
        "from shipyard.handler.flavors import flavor_module\n"
        f"b = Bundle.open({str(bundle.path)!r})\n"
        "rows, _ = b.manifest.input.coerce(b.example()['instances'])\n"
        "print(flavor_module(b.flavor).load(b.path, b.manifest)(rows).tolist())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'skl2onnx', 'joblib')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    answers, imported = done.stdout.splitlines()
    assert answers == str(lr.predict(X[:3]).tolist()) and imported == "[]"


def test_decision_function_and_a_converter_that_refuses_double(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.svm import LinearSVC

    X, y = load_iris(return_X_y=True)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    scores = shipyard.save(lr, tmp_path / "lr", example=X[:5], compile="onnx", method="decision_function")
    assert scores.manifest.options["outputs"] == {"predict": "label", "decision_function": "probabilities"}
    assert scores.manifest.compiled["check"]["methods"] == ["decision_function", "predict"]
    assert np.allclose(predict(scores.path, X), lr.decision_function(X), atol=1e-9)

    svc = LinearSVC().fit(X, y)  # no zipmap option, and "post_transform 'NONE' is not supported with double"
    labels = shipyard.save(svc, tmp_path / "svc", example=X[:5], compile="onnx", check_rows=200)
    assert labels.manifest.compiled["input_dtype"] == "float32"
    assert labels.manifest.compiled["check"]["tolerance"] == 1e-5
    assert np.array_equal(predict(labels.path, X), svc.predict(X))

    binary = LogisticRegression(max_iter=500).fit(X, (y > 0).astype(int))
    served = shipyard.save(binary, tmp_path / "bin", example=X[:5], compile="onnx", method="decision_function")
    assert served.manifest.options["column"] == {"decision_function": 1}  # raw scores [-s, s]
    answers = predict(served.path, X)
    assert answers.shape == (len(X),) and np.allclose(answers, binary.decision_function(X), atol=1e-9)


_ONNX_HEAD = 'format = 1\n[model]\nflavor = "onnx"\nartifact = "model/model.onnx"\n'


@pytest.mark.parametrize("path", ["../victim", "/etc/passwd", "model/../../victim", "C:\\\\x"])
@pytest.mark.parametrize("key", ["source_files", "onnx_files", "source_artifact", "onnx_artifact", "artifact"])
def test_a_path_that_leaves_the_bundle_is_refused_at_parse_time(key: str, path: str) -> None:
    document = _ONNX_HEAD + '[compiled]\nstatus = "onnx"\nsource_flavor = "sklearn"\n'
    if key == "artifact":
        document = document.replace('"model/model.onnx"', json.dumps(path))
    elif key.endswith("files"):
        document += f"{key} = [{json.dumps(path)}]\n"
    else:
        document += f"{key} = {json.dumps(path)}\n"
    with pytest.raises(BundleError, match="must be a path inside the bundle"):
        Manifest.parse(document.encode(), source="crafted.toml", default_name="x")


def test_drop_original_deletes_nothing_outside_the_bundle(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression
) -> None:
    """A crafted ``source_files`` (read past the parser, or a link in the bundle) cannot make drop delete outside."""
    from shipyard.handler import compile as compiling

    X, _ = digits
    bundle = shipyard.save(lr, tmp_path / "b", example=X[:3], compile="onnx", check_rows=20)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "flag").write_text("keep")
    text = (bundle.path / "shipyard.toml").read_text()
    crafted = text.replace('source_files = [\n    "model/model.joblib",\n]', 'source_files = ["../victim"]')
    assert crafted != text
    (bundle.path / "shipyard.toml").write_text(crafted)
    with pytest.raises(BundleError, match="must be a path inside the bundle"):
        compile_bundle(bundle.path, tmp_path / "out", drop_original=True)
    (bundle.path / "model" / "out").symlink_to(victim)
    for name in ("../victim", "/etc/passwd", "model/out/flag"):
        with pytest.raises(BundleError, match=r"(inside|outside) the bundle"):
            compiling._drop(bundle.path, {"source_files": ["model/model.joblib", name]})
    assert (victim / "flag").read_text() == "keep" and (bundle.path / "model/model.joblib").exists()


@pytest.mark.parametrize(
    ("head", "table", "message"),
    [
        ('flavor = "sklearn"', 'status = "onnx"\nsource_flavor = "sklearn"', "status 'onnx' but"),
        ('flavor = "onnx"', 'status = "native"\nsource_flavor = "sklearn"', "status 'native' but"),
        ('flavor = "onnx"', 'status = "native"', "status 'native' but"),
        ('flavor = "sklearn"', 'status = "native"\nsource_flavor = "torch"', "status 'native' but"),
        ('flavor = "onnx"', 'status = "onnx"\nsource_flavor = "nope"', "is not a flavor"),
    ],
)
def test_an_inconsistent_compiled_table_is_refused(head: str, table: str, message: str) -> None:
    document = f"format = 1\n[model]\n{head}\n[compiled]\n{table}\n"
    with pytest.raises(BundleError, match=message):
        Manifest.parse(document.encode(), source="crafted.toml", default_name="x")
    for good in ('[model]\nflavor = "sklearn"\n[compiled]\nstatus = "native"\nsource_flavor = "sklearn"\n',):
        Manifest.parse(good.encode(), source="ok.toml", default_name="x")


def test_the_manifest_knows_the_flavors() -> None:
    from shipyard.bundle import manifest
    from shipyard.handler import flavors

    assert manifest.FLAVORS == flavors.FLAVORS


def test_the_native_form_of_a_compiled_manifest_reads_back(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], lr: LogisticRegression
) -> None:
    X, _ = digits
    native = shipyard.save(lr, tmp_path / "b", example=X[:3], compile="onnx", check_rows=20).manifest.as_native()
    assert Manifest.parse(native.to_toml().encode(), source="x", default_name="x") == native
    elsewhere = replace(native, artifact="model/other.joblib")
    with pytest.raises(BundleError, match="status 'onnx' but"):
        Manifest.parse(elsewhere.to_toml().encode(), source="x", default_name="x")


def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.mark.parametrize("kind", ["dtc", "dtr", "rfr", "gbc", "hgbc", "hgbr", "imputer"])
def test_trees_and_imputers_compile_on_a_float32_graph(tmp_path: Path, kind: str) -> None:
    """onnxruntime loads no double TreeEnsemble / Imputer: the converter retries float32, and the check passes."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X, y = _iris()
    models: dict[str, tuple[Any, np.ndarray]] = {
        "dtc": (DecisionTreeClassifier(random_state=0), y),
        "dtr": (DecisionTreeRegressor(random_state=0), X[:, 0]),
        "rfr": (RandomForestRegressor(10, random_state=0), X[:, 0]),
        "gbc": (GradientBoostingClassifier(n_estimators=10, random_state=0), y),
        "hgbc": (HistGradientBoostingClassifier(max_iter=10), y),
        "hgbr": (HistGradientBoostingRegressor(max_iter=10), X[:, 0]),
        "imputer": (make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)), y),
    }
    model, target = models[kind]
    if kind == "imputer":
        X = X.copy()
        X[::7, 1] = np.nan
    model.fit(X, target)
    bundle = shipyard.save(model, tmp_path / kind, example=X[:5], compile="onnx", check_rows=300)
    assert bundle.manifest.flavor == "onnx" and bundle.manifest.compiled["input_dtype"] == "float32"
    answers = predict(bundle.path, X)
    assert answers.shape == model.predict(X).shape
    if kind in ("dtc", "gbc", "hgbc", "imputer"):
        assert np.array_equal(answers, model.predict(X))


def test_a_reason_names_no_staging_path(tmp_path: Path, lr: LogisticRegression, digits: Any, monkeypatch: Any) -> None:
    import shipyard.handler.compile.sklearn as converter

    X, _ = digits
    real = converter.convert

    def broken(model: Any, bundle_dir: Path, manifest: Manifest) -> Any:
        conversion = real(model, bundle_dir, manifest)
        (bundle_dir / "model/model.onnx").write_bytes(b"not onnx")
        return conversion

    monkeypatch.setattr(converter, "convert", broken)
    bundle = shipyard.save(lr, tmp_path / "b", example=X[:3], compile="auto", check_rows=10)
    reason = bundle.manifest.compiled["reason"]
    assert reason.startswith("onnxruntime cannot load model/model.onnx:"), reason
    assert str(tmp_path) not in reason


@pytest.mark.parametrize("labels", ["bool", "float"])
def test_bool_and_float_labels_answer_as_the_native_model(tmp_path: Path, labels: str) -> None:
    X, y = _iris()
    target = (y > 0) if labels == "bool" else (y > 0).astype(float)
    model = LogisticRegression(max_iter=500).fit(X, target)
    bundle = shipyard.save(model, tmp_path / labels, example=X[45:55], compile="onnx", check_rows=100)
    assert bundle.manifest.options["label_dtype"] == ("bool" if labels == "bool" else "float64")
    served = json.loads((bundle.path / "example.json").read_text())["predictions"]
    native = json.loads((bundle.path / "example.native.json").read_text())["predictions"]
    assert served == native and all(type(v) is type(native[0]) for v in served)
    assert {type(v) for v in native} == {bool if labels == "bool" else float}
    assert bundle.manifest.output["dtype"] == ("bool" if labels == "bool" else "float64")


def test_the_check_tells_true_from_one() -> None:
    from shipyard.handler.compile.check import _compare_one

    equal, _, difference = _compare_one("predict", np.array([True, False]), np.array([1, 0]), 1e-5)
    assert not equal and difference == (-1, "dtype bool (native) vs int64 (onnx)")
    assert _compare_one("predict", np.array([1, 0], dtype=np.int32), np.array([1, 0]), 1e-5)[2] is None


@pytest.mark.parametrize("kind", ["linsvc", "ridge", "svc"])
def test_binary_classifiers_without_probabilities_compile_with_sklearn_shapes(tmp_path: Path, kind: str) -> None:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.svm import SVC, LinearSVC

    X, y = _iris()
    model = {"linsvc": LinearSVC(), "ridge": RidgeClassifier(), "svc": SVC()}[kind].fit(X, (y > 0).astype(int))
    bundle = shipyard.save(model, tmp_path / kind, example=X[45:55], compile="onnx", check_rows=200)
    assert bundle.manifest.compiled["check"]["methods"] == ["predict", "decision_function"]
    assert np.array_equal(predict(bundle.path, X), model.predict(X))
    scores = predict(bundle.path, X, "decision_function")
    assert scores.shape == (len(X),) and np.allclose(scores, model.decision_function(X), atol=1e-4)


def test_a_method_of_another_shape_is_left_out_unless_it_is_served(tmp_path: Path, monkeypatch: Any) -> None:
    """Without the shape options, LinearSVC's decision_function is [N, 1]: left out (named) when predict is
    served, a failed check when it is the served method."""
    from sklearn.svm import LinearSVC

    import shipyard.handler.compile.sklearn as converter

    X, y = _iris()
    model = LinearSVC().fit(X, (y > 0).astype(int))
    monkeypatch.setattr(converter, "_shapes", lambda *args: {})
    bundle = shipyard.save(model, tmp_path / "a", example=X[45:55], compile="onnx", check_rows=50)
    check = bundle.manifest.compiled["check"]
    assert check["methods"] == ["predict"]
    assert check["left_out"] == {"decision_function": "shape () per row (native) vs (1,) (onnx)"}
    assert "decision_function" not in bundle.manifest.options["outputs"]
    assert Bundle.open(bundle.path).manifest.compiled["check"]["left_out"] == check["left_out"]
    with pytest.raises(BundleError, match=re.escape("decision_function: shape (60,) (native) vs (60, ")):
        shipyard.save(
            model, tmp_path / "b", example=X[45:55], compile="onnx", check_rows=50, method="decision_function"
        )


def test_coded_columns_and_rows_the_native_model_refuses(tmp_path: Path) -> None:
    """Codes 0/10/20 are sampled as seen; a column of 25 codes gets gap values the encoder refuses: dropped."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    X, y = _iris()
    rng = np.random.default_rng(0)
    codes = np.column_stack([rng.choice([0.0, 10.0, 20.0], len(X)), rng.choice(np.arange(0.0, 50.0, 2.0), len(X))])
    X = np.column_stack([X, codes])
    model = make_pipeline(
        ColumnTransformer([("s", StandardScaler(), [0, 1, 2, 3]), ("o", OneHotEncoder(), [4, 5])]),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    bundle = shipyard.save(model, tmp_path / "b", example=X[:5], compile="onnx", check_rows=200, held_out=X)
    check = bundle.manifest.compiled["check"]
    assert 0 < check["dropped_rows"] < 200 and check["rows"] == 5 + 200 - check["dropped_rows"] + len(X)
    assert np.array_equal(predict(bundle.path, X), model.predict(X))


def test_a_regressor_of_a_2d_y_and_held_out_rows_as_a_dataframe(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    X, _ = _iris()
    model = LinearRegression().fit(X[:, 1:], X[:, :1])
    bundle = shipyard.save(
        model, tmp_path / "b", example=X[:5, 1:], compile="onnx", check_rows=50, held_out=pd.DataFrame(X[:, 1:])
    )
    assert "ravel" not in bundle.manifest.options and bundle.manifest.compiled["check"]["rows"] == 5 + 50 + len(X)
    answers = predict(bundle.path, X[:, 1:])
    assert answers.shape == (len(X), 1) and np.allclose(answers, model.predict(X[:, 1:]))


def test_as_native_carries_the_native_output_schema(tmp_path: Path) -> None:
    X, y = _iris()
    model = LogisticRegression(max_iter=500).fit(X, y.astype(np.int32))
    bundle = shipyard.save(model, tmp_path / "b", example=X[:5], compile="onnx", check_rows=20)
    assert bundle.manifest.output["dtype"] == "int64"
    assert bundle.manifest.as_native().output == {"dtype": "int32", "shape": [-1]}
