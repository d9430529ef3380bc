"""shipyard.save: sklearn estimators and pipelines, ONNX (converted with skl2onnx) and Python callables."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shipyard
from shipyard.bundle import Bundle
from shipyard.errors import BundleError
from shipyard.handler.flavors import flavor_module


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def predict_from_bundle(path: Path, inputs: Any) -> Any:
    """Load the bundle the way a worker does (its flavor's loader) and predict."""
    bundle = Bundle.open(path)
    predict = flavor_module(bundle.flavor).load(bundle.path, bundle.manifest)
    coerced, _ = bundle.manifest.input.coerce(inputs)
    return predict(coerced)


def test_save_sklearn_estimator(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    bundle = shipyard.save(model, tmp_path / "iris", example=X[:3], name="iris", version="7")

    assert bundle.flavor == "sklearn"
    assert bundle.manifest.name == "iris"
    assert bundle.manifest.version == "7"
    assert bundle.manifest.artifact == "model/model.joblib"
    assert (tmp_path / "iris" / "model" / "model.joblib").is_file()
    assert bundle.manifest.input.shape == (-1, 4)
    assert bundle.manifest.output == {"dtype": "int64", "shape": [-1]}
    example = orjson.loads((tmp_path / "iris" / "example.json").read_bytes())
    assert example["predictions"] == model.predict(X[:3]).tolist()
    np.testing.assert_array_equal(predict_from_bundle(bundle.path, X[50:60].tolist()), model.predict(X[50:60]))


def test_save_sklearn_method(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    bundle = shipyard.save(model, tmp_path / "proba", example=X[:2], method="predict_proba")
    assert bundle.manifest.options["method"] == "predict_proba"
    assert bundle.manifest.output["shape"] == [-1, 3]
    np.testing.assert_allclose(predict_from_bundle(bundle.path, X[:4]), model.predict_proba(X[:4]))
    with pytest.raises(BundleError, match="has no method 'transform'"):
        shipyard.save(model, tmp_path / "nope", example=X[:2], method="transform")


def test_save_sklearn_pipeline_on_a_dataframe(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"age": [22, 35, 58, 41, 30, 63], "city": ["a", "b", "a", "c", "b", "c"], "income": [1.0, 2, 3, 4, 5, 6]}
    )
    target = [0, 1, 1, 0, 1, 0]
    pipeline = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["city"])]),
        LogisticRegression(),
    ).fit(frame, target)
    bundle = shipyard.save(pipeline, tmp_path / "pipe", example=frame.head(3))

    schema = bundle.manifest.input
    assert schema.kind == "columns"
    assert schema.names == ("age", "city", "income")
    records = orjson.loads(frame.tail(2).to_json(orient="records"))
    np.testing.assert_array_equal(predict_from_bundle(bundle.path, records), pipeline.predict(frame.tail(2)))


def test_save_records_by_feature_names(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model = LogisticRegression(max_iter=500).fit(X, y)
    bundle = shipyard.save(model, tmp_path / "named", example=X[:2], feature_names=names)
    assert bundle.manifest.input.names == tuple(names)
    record = dict(zip(names, X[100].tolist(), strict=True))
    np.testing.assert_array_equal(predict_from_bundle(bundle.path, record), model.predict(X[100:101]))


def test_save_onnx_via_skl2onnx(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    from skl2onnx import to_onnx

    X, y = iris
    X32 = X.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(X32, y)
    onx = to_onnx(model, X32[:1], options={"zipmap": False})

    bundle = shipyard.save(onx, tmp_path / "onnx", example=X32[:3])
    assert bundle.flavor == "onnx"
    assert bundle.manifest.input.dtype == "float32"
    np.testing.assert_array_equal(predict_from_bundle(bundle.path, X[:20].tolist()), model.predict(X32[:20]))

    probabilities = shipyard.save(onx, tmp_path / "onnx-proba", example=X32[:3], output="probabilities")
    np.testing.assert_allclose(
        predict_from_bundle(probabilities.path, X32[:5]), model.predict_proba(X32[:5]), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(BundleError, match="no output 'nope'"):
        shipyard.save(onx, tmp_path / "onnx-bad", example=X32[:3], output="nope")


def test_save_onnx_from_a_file(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    from skl2onnx import to_onnx

    X, y = iris
    X32 = X.astype(np.float32)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(LogisticRegression(max_iter=500).fit(X32, y), X32[:1]).SerializeToString())
    bundle = shipyard.save(str(path), tmp_path / "from-file", example=X32[:2])
    assert bundle.flavor == "onnx"
    assert (bundle.path / "model" / "model.onnx").read_bytes() == path.read_bytes()


def test_save_python_callable(tmp_path: Path) -> None:
    offset = 10.0

    def add_offset(batch: np.ndarray) -> np.ndarray:  # a closure: travels by value with cloudpickle
        return batch.sum(axis=1) + offset

    bundle = shipyard.save(add_offset, tmp_path / "fn", example=np.ones((2, 3)))
    assert bundle.flavor == "python"
    np.testing.assert_array_equal(predict_from_bundle(bundle.path, [[1, 2, 3]]), [16.0])


def test_save_texts_with_a_lambda(tmp_path: Path) -> None:
    bundle = shipyard.save(lambda texts: [len(t) for t in texts], tmp_path / "len", example=["ab", "cde"])
    assert bundle.manifest.input.dtype == "string"
    assert bundle.manifest.output["dtype"] == "int64"
    assert list(predict_from_bundle(bundle.path, ["hello"])) == [5]


def test_save_pins_requirements(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    bundle = shipyard.save(
        model, tmp_path / "pinned", example=X[:2], requirements=["pandas", "orjson>=3", "not-installed-anywhere"]
    )
    lines = (bundle.path / "code" / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in lines
    assert f"numpy=={metadata.version('numpy')}" in lines
    assert f"pandas=={metadata.version('pandas')}" in lines
    assert "orjson>=3" in lines  # a specifier the user wrote is kept as written
    assert "not-installed-anywhere" in lines  # unknown here: left for the image build to resolve
    assert lines == sorted(lines, key=str.lower)
    assert bundle.requirements() == lines
    assert bundle.manifest.runtime["libraries"]["scikit-learn"] == metadata.version("scikit-learn")


def test_save_refuses_to_overwrite(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    target = tmp_path / "b"
    shipyard.save(model, target, example=X[:2], version="1")
    with pytest.raises(BundleError, match="already exists; pass overwrite=True"):
        shipyard.save(model, target, example=X[:2], version="2")
    assert Bundle.open(target).manifest.version == "1"
    shipyard.save(model, target, example=X[:2], version="2", overwrite=True)
    assert Bundle.open(target).manifest.version == "2"
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match="already exists"):
        shipyard.save(model, tmp_path / "file", example=X[:2])


def test_save_into_an_empty_directory(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    (tmp_path / "empty").mkdir()
    bundle = shipyard.save(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "empty", example=X[:2])
    assert bundle.flavor == "sklearn"


def test_failing_model_leaves_nothing_behind(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    target = tmp_path / "b"
    shipyard.save(LogisticRegression(max_iter=500).fit(X, y), target, example=X[:2], version="1")

    def broken(batch: Any) -> Any:
        raise RuntimeError("cannot predict")

    with pytest.raises(BundleError, match="fails on its own example: RuntimeError: cannot predict"):
        shipyard.save(broken, target, example=X[:2], overwrite=True)
    assert Bundle.open(target).manifest.version == "1"  # the old bundle is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging directory left


def test_model_must_return_one_prediction_per_row(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="one prediction per row"):
        shipyard.save(lambda batch: 1.0, tmp_path / "scalar", example=np.ones((3, 2)))


def test_unknown_model_type(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"cannot tell how to save a builtins\.int"):
        shipyard.save(42, tmp_path / "int")
    with pytest.raises(BundleError, match="unknown flavor 'keras'"):
        shipyard.save(lambda x: x, tmp_path / "keras", flavor="keras")


NOTEBOOK = '''
import inspect, sys
import numpy as np
import shipyard

class Doubler:
    """A model class defined in the notebook itself (__main__): cloudpickle takes it by value."""
    def __call__(self, rows):
        return np.asarray(rows).sum(axis=1) * 2

before = Doubler.__call__
shipyard.save(Doubler(), sys.argv[1], example=np.ones((2, 3)))  # loads the bundle back in this process to check it
assert Doubler.__call__ is before, "save replaced the method of the live class"
assert Doubler.__call__.__code__.co_filename == __file__, Doubler.__call__.__code__.co_filename
inspect.getsource(Doubler.__call__)
print("intact")
'''


def test_save_leaves_the_notebooks_own_class_untouched(tmp_path: Path) -> None:
    # Before the fix, the load-back check handed cloudpickle's tracked original class the unpickled methods
    # (code from "<dynamic-code>"): inspect.getsource, torch.jit.script and tracebacks then failed on it.
    import subprocess
    import sys

    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "bundle")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "intact"
    np.testing.assert_array_equal(predict_from_bundle(tmp_path / "bundle", [[1, 2, 3]]), [12])


def test_a_private_umask_still_gives_a_bundle_everyone_can_read(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    previous = os.umask(0o077)  # as a user with a private umask, or a library writing through mkstemp (0600)
    try:
        bundle = shipyard.save(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "private", example=X[:3])
    finally:
        os.umask(previous)
    root = bundle.path
    modes = {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}
    assert modes == {
        ".": 0o755, "model": 0o755, "code": 0o755, "model/model.joblib": 0o644, "code/requirements.txt": 0o644,
        "shipyard.toml": 0o644, "example.json": 0o644,
    }  # fmt: skip


def test_save_into_an_existing_folder_keeps_the_folder(tmp_path: Path) -> None:
    """SM_MODEL_DIR in a training container is a mount point: it can be neither removed nor renamed over, so a
    save into an existing folder replaces what it holds and keeps the folder itself."""
    from sklearn.linear_model import LogisticRegression

    X = np.arange(20.0).reshape(10, 2)
    target = tmp_path / "model"
    target.mkdir()
    inode = target.stat().st_ino
    shipyard.save(LogisticRegression().fit(X, X[:, 0] > 9), target, example=X[:2])
    (target / "stale.txt").write_text("from before")
    shipyard.save(LogisticRegression().fit(X, X[:, 0] > 5), target, example=X[:2], overwrite=True)
    assert target.stat().st_ino == inode and (target / "shipyard.toml").is_file()
    assert not (target / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
