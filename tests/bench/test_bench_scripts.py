"""The pure pieces of the benchmark scripts under bench/ (issue 19): the forms' comparison, the targets, the
reports. The scripts themselves measure; these check that what they write says what the figures mean."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _script(name: str) -> ModuleType:
    """bench/NAME.py as a module (bench/ is scripts, not a package). The scripts put bench/ and examples/ on
    sys.path for their own imports; both are taken off again, with the modules imported from there, or
    bench/deploy.py would shadow the tests' own ``deploy`` folder for every test collected after this one."""
    path, modules = list(sys.path), set(sys.modules)
    try:
        spec = importlib.util.spec_from_file_location(f"bench_script_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.append(str(BENCH))
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        for added in set(sys.modules) - modules:
            origin = str(getattr(sys.modules[added], "__file__", None) or "")
            if origin.startswith((str(BENCH), str(BENCH.parent / "examples"))):
                del sys.modules[added]
    return module


compiled = _script("compiled")


def test_digits_rows_cover_the_range_with_integers_and_floats() -> None:
    rows = compiled.digits_rows(1001, seed=3)
    assert rows.shape == (1001, 64) and rows.dtype == np.float64
    assert rows.min() >= 0 and rows.max() <= 16
    integral = (rows == np.round(rows)).all(axis=1)
    assert integral[0::2].all() and not integral[1::2].any()  # interleaved: integers, then uniform floats
    assert (compiled.digits_rows(1001, seed=3) == rows).all()


def test_compare_outputs_counts_labels_and_names_the_first_difference() -> None:
    same = compiled.compare_outputs("predict", np.array([1, 2, 3]), np.array([1, 2, 3]))
    assert same == {"method": "predict", "rows": 3, "labels_equal": 3, "labels_differ": 0, "first_difference": ""}
    text = compiled.compare_outputs("predict", ["a", "b", "c", "d"], ["a", "x", "c", "y"])
    assert text["labels_equal"] == 2 and text["labels_differ"] == 2
    assert text["first_difference"] == "row 1: 'b' (native) vs 'x' (compiled)"


def test_compare_outputs_reports_the_largest_score_error_and_shape_mismatches() -> None:
    native = np.array([[0.25, 0.75], [0.5, 0.5]])
    shifted = native.astype(np.float32) + np.array([[0, 0], [3e-7, 0]])
    scores = compiled.compare_outputs("predict_proba", native, shifted)
    assert scores["max_abs_error"] == pytest.approx(3e-7, rel=1e-3) and scores["worst_row"] == 1
    assert "labels_equal" not in scores
    shapes = compiled.compare_outputs("predict_proba", native, native[:, 0])
    assert shapes["shape_native"] == [2, 2] and shapes["shape_compiled"] == [2]


def test_verdict_passes_only_when_every_row_has_the_same_label() -> None:
    summary: dict[str, Any] = {
        "inputs": 4,
        "predict": compiled.compare_outputs("predict", [1, 2, 3, 4], [1, 2, 3, 4]),
        "predict_proba": {"method": "predict_proba", "rows": 4, "max_abs_error": 2e-7},
    }
    good = compiled.verdict(summary)
    assert good["pass"] and good["labels_equal"] == 4 and good["max_probability_error"] == 2e-7
    summary["predict"] = compiled.compare_outputs("predict", [1, 2, 3, 4], [1, 2, 3, 5])
    assert not compiled.verdict(summary)["pass"]
    unanswered = compiled.verdict({"inputs": 4, "predict_proba": {"not_answered": {"compiled": "BundleError: no"}}})
    assert not unanswered["pass"] and unanswered["max_probability_error"] is None
    assert unanswered["probabilities_not_answered"] == {"compiled": "BundleError: no"}


def test_ratio_judges_both_senses() -> None:
    assert compiled.ratio(0.6, 1.6, "≤", 0.5)["pass"] and compiled.ratio(0.6, 1.6, "≤", 0.5)["ratio"] == 0.375
    assert not compiled.ratio(0.9, 1.6, "≤", 0.5)["pass"]
    assert compiled.ratio(300, 290, "≥", 1.0)["pass"] and not compiled.ratio(280, 290, "≥", 1.0)["pass"]


def _image_results(compiled_size: float, compiled_start: float, differ: int = 0) -> dict[str, Any]:
    common = {"layers": 6, "cold_start_ping_s": 1.4, "cold_build_s": 20.0, "warm_build_s": 1.0}
    predictions = {"rows": 10_000, "labels_equal": 10_000 - differ, "labels_differ": differ, "pass": differ == 0}
    predictions |= {"first_difference": "row 7: 3 (native) vs 5 (compiled)" if differ else ""}
    return {
        "tutorial": {**common, "size_mb": 481.8, "cold_start_prediction_s": 1.6, "code_rebuild_s": 1.3},
        "shipyard": {**common, "size_mb": 472.3, "cold_start_prediction_s": 1.47, "code_rebuild_s": 1.4},
        "shipyard compiled": {
            **common,
            "size_mb": compiled_size,
            "cold_start_prediction_s": compiled_start,
            "how": "shipyard build BUNDLE --compile onnx",
            "compared": "compile_bundle",
            "predictions": {**predictions, "max_probability_error": 3.2e-7},
        },
        "server floor": {"size_mb": 269.6, "cold_start_prediction_s": 0.57},
    }


def test_image_targets_for_the_compiled_image() -> None:
    image = _script("image")
    ratios, targets = image._targets(_image_results(310.0, 0.7))
    assert ratios["compiled_size"] == round(310.0 / 481.8, 3) and ratios["compiled_cold_start_prediction"] == 0.437
    assert targets["compiled size <= 0.7 x tutorial"] and targets["compiled cold start <= 0.5 x tutorial"]
    assert targets["compiled labels = native on 10,000 rows"]
    assert targets["size <= tutorial"] and not targets["cold start <= 0.7 x tutorial"]  # issue 4's, kept
    ratios, targets = image._targets(_image_results(352.6, 0.81, differ=3))
    assert not targets["compiled size <= 0.7 x tutorial"] and not targets["compiled cold start <= 0.5 x tutorial"]
    assert not targets["compiled labels = native on 10,000 rows"]


def test_image_markdown_shows_the_compiled_column_and_its_targets() -> None:
    image = _script("image")
    results = _image_results(352.6, 0.7, differ=3)
    ratios, targets = image._targets(results)
    document = {
        "date": "2026-12-04T00:00:00Z",
        "machine": {"cpus": 2, "podman": "podman 4.3.1", "load_average_at_end": [0.5], "images_in_store": 9},
        "base": "localhost/python-base:3.11-bookworm",
        "runs": 5,
        "results": results,
        "ratios": ratios,
        "targets": targets,
    }
    text = image._markdown(document)
    assert "| Shipyard compiled (ONNX) |" in text
    assert "| image size (MB) | 481.8 | 472.3 | 352.6 | 269.6 |" in text
    assert f"| compiled size ≤ 0.7 × tutorial | {ratios['compiled_size']} × | **no** |" in text
    assert "| compiled cold start to first correct prediction ≤ 0.5 × tutorial | 0.437 × | yes |" in text
    assert "| compiled labels = native on 10,000 generated rows | 9,997 equal | **no** |" in text
    assert "first difference row 7: 3 (native) vs 5 (compiled)" in text and "3.2e-07" in text


def _transformers_report(compiled_mb: float, compiled_rps: float) -> dict[str, Any]:
    def served(rps: float, t500: float) -> dict[str, Any]:
        return {
            "answers_equal_in_process": 300,
            "c64": {"req_per_s": rps, "p50_ms": 200.0, "p99_ms": 240.0, "errors": {}},
            "c64_cores": {"server": 1.0, "client": 0.05, "generator": 0.02},
            "lone_after_burst_ms": 17.0,
            "t500_ms": {"median": t500, "samples": [t500]},
        }

    predictions = {"rows": 10_000, "labels_equal": 10_000, "labels_differ": 0, "pass": True}
    return {
        "forms": {"native": {"flavor": "sentence_transformers"}, "compiled": {"flavor": "onnx"}},
        "images": {
            "native": {"size_mb": 1641.0, "build_s": 90.0, "labels": {}},
            "compiled": {"size_mb": compiled_mb, "build_s": 30.0, "labels": {"dev.shipyard.pruned": "onnxruntime"}},
        },
        "cold_start": {
            "native": {"ping_s": 9.0, "prediction_s": 10.0, "prediction_runs_s": [10.0]},
            "compiled": {"ping_s": 1.1, "prediction_s": 1.3, "prediction_runs_s": [1.3]},
        },
        "server": {"native": served(288.0, 1280.0), "compiled": served(compiled_rps, 900.0)},
        "predictions": {**predictions, "max_probability_error": 4e-7, "first_difference": ""},
    }


def test_transformers_compiled_targets_and_markdown() -> None:
    bench = _script("transformers")
    baseline = {"batch64_texts_per_s": 344.0, "single_ms": 12.6, "t500_ms": 1181.0, "big_s": 29.8}
    baselines = {"native": baseline, "compiled": baseline}
    load = (0.5, 0.6, 0.7)
    document = bench._compiled_results(_transformers_report(455.0, 300.0), baselines, 10_000, "base", load, quick=False)
    targets = document["targets"]
    assert targets["image_size"]["ratio"] == round(455 / 1641, 3) and targets["image_size"]["pass"]
    assert targets["cold_start_prediction"]["ratio"] == 0.13 and targets["cold_start_prediction"]["pass"]
    assert targets["c64_req_per_s"]["pass"] and targets["one_request_500"]["pass"] and targets["predictions"]["pass"]
    assert document["machine"]["load_average_before"] == [0.5, 0.6, 0.7] and "cpu" in document["machine"]
    text = bench._compiled_markdown(document)
    assert "| image size (MB) | 1641 | 455 | 0.277 | ≤ 0.4 | yes |" in text
    assert "| labels on 10,000 texts in process | — | 10,000 equal | — | all equal | yes |" in text
    assert "4e-07" in text
    slow = bench._compiled_results(_transformers_report(700.0, 250.0), baselines, 10_000, "base", load, quick=True)
    assert not slow["targets"]["image_size"]["pass"] and not slow["targets"]["c64_req_per_s"]["pass"]
    row = "| c=64, one text per request (req/s) | 288 | 250 | 0.868 | ≥ 1.0 | **no** |"
    assert row in bench._compiled_markdown(slow)


def test_compare_loads_both_forms_through_their_flavors(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import shipyard

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X[:600], y[:600])
    shipyard.save(model, tmp_path / "native", example=X[:5])
    shipyard.save(model, tmp_path / "compiled", example=X[:5], compile="onnx")
    rows = compiled.digits_rows(500)
    summary = compiled.compare(tmp_path / "native", tmp_path / "compiled", rows)
    assert summary["flavors"] == {"native": "sklearn", "compiled": "onnx"} and summary["inputs"] == 500
    assert summary["predict"]["labels_equal"] == 500
    assert summary["predict_proba"]["max_abs_error"] < 1e-5
    assert compiled.verdict(summary)["pass"]
