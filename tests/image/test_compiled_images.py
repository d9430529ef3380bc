"""Images of a compiled bundle with Podman: the digits model saved with ``compile="onnx"`` builds without
scikit-learn or SciPy, its onnxruntime pruned and still answering, and verifies green under
``--limits serverless:1024``; ``--compile off`` of the same bundle builds the native form and verifies green.
Two image builds in all (module-scoped)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import joblib
import pytest

import shipyard
from shipyard.image import BuildOptions, BuildResult, build
from shipyard.image.engine import detect
from shipyard.image.verify import VerifyOptions, parse_limits, verify

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compiled_bundle(
    digits_bundle: Path, digits_rows: list[list[float]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The digits example's model, saved again compiled (its original kept)."""
    model = joblib.load(digits_bundle / "model" / "model.joblib")
    target = tmp_path_factory.mktemp("compiled") / "digits-onnx"
    return shipyard.save(model, target, example=digits_rows, name="digits", compile="onnx").path


@pytest.fixture(scope="module")
def compiled_image(base_image: str, compiled_bundle: Path) -> BuildResult:
    return build(compiled_bundle, BuildOptions(tag="shipyard-test/digits:onnx", base=base_image, engine="podman"))


@pytest.fixture(scope="module")
def native_of_compiled(base_image: str, compiled_bundle: Path) -> BuildResult:
    options = BuildOptions(tag="shipyard-test/digits:onnx-off", base=base_image, engine="podman", compile="off")
    return build(compiled_bundle, options)


def _python(image: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--entrypoint", "/opt/shipyard/venv/bin/python", image,
         "-c", code],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_compiled_image_has_no_sklearn_and_a_pruned_onnxruntime_that_answers(compiled_image: BuildResult) -> None:
    names = {r.split("==")[0] for r in compiled_image.requirements}
    assert "onnxruntime" in names and not names & {"scikit-learn", "scipy", "joblib"}
    for module in ("sklearn", "scipy"):
        done = _python(compiled_image.image, f"import {module}")
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, done.stderr
    done = _python(
        compiled_image.image,
        "import glob, os, onnxruntime, numpy as np\n"
        "root = os.path.dirname(onnxruntime.__file__)\n"
        "gone = ['capi/libonnxruntime.so.*', 'transformers', 'tools', 'quantization']\n"
        "print([p for p in gone if glob.glob(os.path.join(root, p))])\n"
        "s = onnxruntime.InferenceSession('/opt/ml/model/model/model.onnx', providers=['CPUExecutionProvider'])\n"
        "print(s.run(None, {s.get_inputs()[0].name: np.zeros((2, 64))})[0].tolist())\n",
    )
    assert done.returncode == 0, done.stderr
    left, labels = done.stdout.splitlines()[-2:]
    assert left == "[]" and len(json.loads(labels)) == 2
    info = detect("podman").inspect_image(compiled_image.image)
    assert info.labels["dev.shipyard.pruned"].startswith("onnxruntime: onnxruntime/capi/libonnxruntime.so.*")
    assert info.labels["dev.shipyard.flavor"] == "onnx" and info.labels["dev.shipyard.form"] == "onnx"
    baked = _python(compiled_image.image, "import os; print(sorted(os.listdir('/opt/ml/model/model')))")
    assert baked.stdout.strip() == "['model.onnx']"  # the native artifact stays out of the image


def test_the_compiled_image_verifies_green_under_serverless_1024(compiled_image: BuildResult) -> None:
    report = verify(compiled_image.image, VerifyOptions(limits=parse_limits("serverless:1024"), scan_layers=False))
    statuses = {check.name: check.status for check in report.checks}
    assert report.passed, report.to_dict()
    assert set(statuses.values()) == {"pass"}
    assert {"serverless-ping", "serverless-latency", "serverless-memory"} <= set(statuses)
    assert report.limits == "serverless:1024" and report.memory_limit_bytes == 1024 * 1024**2
    assert report.memory_peak_bytes is not None and 0 < report.memory_peak_bytes < report.memory_limit_bytes
    assert report.cold_start_prediction_s is not None and report.cold_start_s is not None
    assert report.cold_start_prediction_s >= report.cold_start_s
    print(f"compiled: {compiled_image.size / 1e6:.1f} MB, {report.to_dict()}")  # the figures, with -s


def test_compile_off_of_the_compiled_bundle_serves_the_native_form_green(native_of_compiled: BuildResult) -> None:
    names = {r.split("==")[0] for r in native_of_compiled.requirements}
    assert "scikit-learn" in names and "onnxruntime" not in names
    info = detect("podman").inspect_image(native_of_compiled.image)
    assert info.labels["dev.shipyard.flavor"] == "sklearn" and info.labels["dev.shipyard.form"] == "native"
    assert "dev.shipyard.pruned" not in info.labels
    done = _python(native_of_compiled.image, "import onnxruntime")
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr
    report = verify(native_of_compiled.image, VerifyOptions(timeout=90, scan_layers=False))
    statuses = {check.name: check.status for check in report.checks}
    assert report.passed, report.to_dict()
    assert statuses["predictions"] == "pass"  # against example.native.json's answers, baked as example.json
    print(f"native (--compile off): {native_of_compiled.size / 1e6:.1f} MB, {report.to_dict()}")
