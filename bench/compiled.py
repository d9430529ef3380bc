"""Native against compiled: the same inputs through both forms of a model, in process (issue 19).

Each form is loaded through its own flavor (``flavor_module(manifest.flavor).load``, the server's code path) once
per method, with ``[model.options] method`` set to that method: ``predict`` compares labels, ``predict_proba``
the probabilities (the largest absolute difference over every row and class). A form that does not answer a
method (the flavor refuses the option) is reported as such rather than guessed at.

    python bench/compiled.py NATIVE_BUNDLE COMPILED_BUNDLE INPUTS.json [METHOD ...]   # prints the JSON summary
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["compare", "compare_outputs", "digits_rows", "ratio", "verdict"]

METHODS = ("predict", "predict_proba")


def digits_rows(count: int, seed: int = 0) -> np.ndarray:
    """``count`` rows of 64 features in the digits data's range 0..16: half integers (what the scanner writes),
    half uniform floats (what no training row was), interleaved."""
    rng = np.random.default_rng(seed)
    integers = rng.integers(0, 17, size=(count - count // 2, 64)).astype(np.float64)
    floats = rng.uniform(0.0, 16.0, size=(count // 2, 64))
    rows = np.empty((count, 64), dtype=np.float64)
    rows[0::2], rows[1::2] = integers, floats
    return rows


def compare_outputs(method: str, native: Any, compiled: Any) -> dict[str, Any]:
    """What differs between two forms' answers to ``method``: labels exactly (count equal, first difference),
    scores by the largest absolute error."""
    a, b = np.asarray(native), np.asarray(compiled)
    if a.shape != b.shape:
        return {"method": method, "rows": len(a), "shape_native": list(a.shape), "shape_compiled": list(b.shape)}
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        error = np.abs(a.astype(np.float64) - b.astype(np.float64))
        worst = int(np.unravel_index(int(error.argmax()), error.shape)[0]) if error.size else 0
        return {
            "method": method,
            "rows": len(a),
            "max_abs_error": float(error.max()) if error.size else 0.0,
            "mean_abs_error": float(error.mean()) if error.size else 0.0,
            "worst_row": worst,
        }
    equal = a == b if a.ndim == 1 else (a == b).all(axis=tuple(range(1, a.ndim)))
    differing = np.flatnonzero(~equal)
    first = ""
    if differing.size:
        row = int(differing[0])
        first = f"row {row}: {a[row].tolist()!r} (native) vs {b[row].tolist()!r} (compiled)"
    return {
        "method": method,
        "rows": len(a),
        "labels_equal": int(equal.sum()),
        "labels_differ": int(differing.size),
        "first_difference": first,
    }


def compare(native: Path, compiled: Path, inputs: Any, methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """Both bundles' answers to ``inputs`` for each method, compared (see :func:`compare_outputs`)."""
    from shipyard.bundle import Bundle

    bundles = {"native": Bundle.open(native), "compiled": Bundle.open(compiled)}
    summary: dict[str, Any] = {
        "flavors": {name: bundle.flavor for name, bundle in bundles.items()},
        "inputs": len(inputs),
    }
    for method in methods:
        answers: dict[str, Any] = {}
        for name, bundle in bundles.items():
            try:
                answers[name] = _predictor(bundle, method)(inputs)
            except Exception as exc:  # a form that does not answer this method: say so
                answers[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if any(isinstance(value, str) for value in answers.values()):
            summary[method] = {
                "method": method,
                "not_answered": {k: v for k, v in answers.items() if isinstance(v, str)},
            }
        else:
            summary[method] = compare_outputs(method, answers["native"], answers["compiled"])
    return summary


def _predictor(bundle: Any, method: str) -> Any:
    from shipyard.handler.flavors import flavor_module

    manifest = bundle.manifest
    manifest = dataclasses.replace(manifest, options={**manifest.options, "method": method})
    return flavor_module(manifest.flavor).load(bundle.path, manifest)


def ratio(measured: float, baseline: float, sense: str, target: float) -> dict[str, Any]:
    """``measured / baseline`` against a target ratio: ``sense`` "≤" or "≥"."""
    value = measured / baseline if baseline else float("inf")
    return {
        "measured": round(measured, 3),
        "baseline": round(baseline, 3),
        "ratio": round(value, 3),
        "target": f"{sense} {target}",
        "pass": value <= target if sense == "≤" else value >= target,
    }


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """The predictions target from a :func:`compare` summary: every label equal; the score error as reached
    (None when a form gave no scores)."""
    labels = summary.get("predict", {})
    scores = summary.get("predict_proba", {})
    return {
        "rows": summary.get("inputs"),
        "labels_equal": labels.get("labels_equal"),
        "labels_differ": labels.get("labels_differ"),
        "first_difference": labels.get("first_difference", ""),
        "max_probability_error": scores.get("max_abs_error"),
        "probabilities_not_answered": scores.get("not_answered"),
        "pass": bool(labels) and labels.get("labels_differ") == 0 and labels.get("rows") == summary.get("inputs"),
    }


def main(argv: list[str]) -> int:
    native, compiled, inputs, *methods = argv
    data = json.loads(Path(inputs).read_text())
    rows = np.asarray(data)  # rows of numbers → float64; texts → a str array, as the server's decoder gives
    print(json.dumps(compare(Path(native), Path(compiled), rows, methods or METHODS)))
    return 0


if __name__ == "__main__":
    # run as a script, bench/ is first on the path, where its transformers.py would shadow the library
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.exit(main(sys.argv[1:]))
