"""Which form of a bundle an image serves (``build --compile``) and what its build context then holds: pure, no
engine (the images themselves are built in test_compiled_images.py)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.bundle import Bundle
from shipyard.bundle.manifest import Manifest
from shipyard.errors import ImageError
from shipyard.image.build import BuildOptions, Served, build, served_form, sync_served
from shipyard.image.context import BuildContext, bundle_hash

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same digits model saved native, compiled, and compiled without its original."""
    root = tmp_path_factory.mktemp("forms")
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X[:600], y[:600])
    return {
        "native": shipyard.save(model, root / "native", example=X[:5]).path,
        "onnx": shipyard.save(model, root / "onnx", example=X[:5], compile="onnx").path,
        "dropped": shipyard.save(model, root / "dropped", example=X[:5], compile="onnx", drop_original=True).path,
    }


def _served(path: Path, mode: str | None, scratch: Path) -> Served:
    return served_form(Bundle.open(path), mode, lambda: scratch)


def _names(served: Served) -> set[str]:
    return {f.as_posix() for f in served.files()}


def test_a_compiled_bundle_as_saved_serves_onnx_without_the_native_artifact(bundles: dict[str, Path]) -> None:
    for mode in (None, "onnx", "auto"):
        served = _served(bundles["onnx"], mode, Path("/nonexistent"))
        assert served.root == bundles["onnx"] and served.form == "onnx" and not served.replace
        assert served.manifest.flavor == "onnx"
        assert {r.split("==")[0] for r in served.requirements} == {"numpy", "onnxruntime"}
        assert "model/model.onnx" in _names(served) and "model/model.joblib" not in _names(served)


def test_compile_off_serves_the_native_form_its_requirements_and_native_answers(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    served = _served(bundles["onnx"], "off", tmp_path)
    assert served.form == "native" and served.manifest.flavor == "sklearn"
    assert served.manifest.artifact == "model/model.joblib"
    assert "scikit-learn" in {r.split("==")[0] for r in served.requirements}
    assert "onnxruntime" not in {r.split("==")[0] for r in served.requirements}
    names = _names(served)
    assert "model/model.joblib" in names and "model/model.onnx" not in names and "example.native.json" not in names
    with BuildContext.open(tmp_path / "context") as context:
        sync_served(context, served, bake=True)
    baked = tmp_path / "context"
    written = Manifest.read(baked / "model")
    assert written.flavor == "sklearn" and written.artifact == "model/model.joblib"
    assert (baked / "model" / "example.json").read_bytes() == (bundles["onnx"] / "example.native.json").read_bytes()
    assert "scikit-learn==" in (baked / "code" / "requirements.txt").read_text()
    assert not (baked / "model" / "model" / "model.onnx").exists()
    assert not (baked / "model" / "example.native.json").exists()
    # the user's bundle is unchanged
    assert Manifest.read(bundles["onnx"]).flavor == "onnx"
    assert "onnxruntime" in (bundles["onnx"] / "code" / "requirements.txt").read_text()


def test_compile_off_of_a_bundle_that_dropped_its_original_is_refused_with_a_hint(bundles: dict[str, Path]) -> None:
    with pytest.raises(ImageError) as caught:
        _served(bundles["dropped"], "off", Path("/nonexistent"))
    said = str(caught.value)
    assert said.startswith("--compile off:") and "drop_original" in said and "without --compile off" in said


def test_compile_onnx_of_a_native_bundle_compiles_a_copy_and_leaves_the_bundle_alone(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    before = bundle_hash(bundles["native"])
    for mode in ("onnx", "auto"):
        scratch = tmp_path / mode
        scratch.mkdir()
        served = _served(bundles["native"], mode, scratch)
        assert served.root == scratch / "bundle" and served.form == "onnx" and served.manifest.flavor == "onnx"
        assert {r.split("==")[0] for r in served.requirements} == {"numpy", "onnxruntime"}
        assert "model/model.onnx" in _names(served) and "model/model.joblib" not in _names(served)
    assert bundle_hash(bundles["native"]) == before
    assert Manifest.read(bundles["native"]).flavor == "sklearn" and not Manifest.read(bundles["native"]).compiled


def test_a_native_bundle_without_compile_or_with_off_is_served_as_it_is(bundles: dict[str, Path]) -> None:
    for mode in (None, "off"):
        served = _served(bundles["native"], mode, Path("/nonexistent"))
        assert served.root == bundles["native"] and served.form == "" and not served.leave_out
        assert served.manifest.flavor == "sklearn"


def test_an_auto_bundle_that_kept_its_native_form_refuses_compile_onnx(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "kept"
    shutil.copytree(bundles["native"], bundle)
    manifest = Manifest.read(bundle)
    reason = "MissingShapeCalculator: Unable to find a shape calculator for type Clip"
    dataclasses.replace(manifest, compiled={"status": "native", "reason": reason, "onnx_files": []}).write(bundle)
    with pytest.raises(ImageError, match=r"kept its native form \(MissingShapeCalculator"):
        _served(bundle, "onnx", tmp_path)
    served = _served(bundle, "auto", tmp_path)
    assert served.form == "native" and served.manifest.flavor == "sklearn"


def test_an_unknown_compile_mode_is_refused_before_any_engine_runs(bundles: dict[str, Path]) -> None:
    with pytest.raises(ImageError, match="--compile 'fast': use one of auto, onnx, off"):
        build(bundles["native"], BuildOptions(compile="fast"))


def test_the_onnx_copy_answers_like_the_native_model(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The copy compiled for the image serves the recorded example (what verify's predictions check compares)."""
    served = _served(bundles["native"], "onnx", tmp_path)
    example = Bundle.open(served.root).example()
    assert example is not None
    native = Bundle.open(bundles["native"]).example()
    assert native is not None and np.array_equal(example["predictions"], native["predictions"])
