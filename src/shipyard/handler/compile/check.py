"""The equivalence check: both forms, loaded through their flavors, answer the same rows alike.

Rows are the example, ``count`` generated rows and the held-out rows. Tabular rows are generated in the schema's
ranges (per feature, the [min, max] of the example and held-out rows; integers where a column only holds
integers; a column with one value is widened around it), seeded so a check is repeatable; a converter with its own
``generate`` (texts) makes them instead. Every method both forms answer is compared: labels (integers, booleans,
strings) exactly, floats within ``tolerance · max(1, |native|)``. The first difference names the row and where it
came from; a label that flips where the native scores tie says so.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle.manifest import Manifest
from shipyard.bundle.schema import Schema
from shipyard.errors import BundleError

__all__ = ["Check", "compare", "generate_rows"]

SEED = 19


@dataclass(frozen=True)
class Check:
    rows: int
    methods: tuple[str, ...]
    labels_equal: bool
    tolerance: float
    max_abs_error: float
    first_difference: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "methods": list(self.methods),
            "labels_equal": self.labels_equal,
            "tolerance": self.tolerance,
            "max_abs_error": self.max_abs_error,
            "first_difference": self.first_difference,
        }


def compare(
    bundle_dir: Path,
    native: Manifest,
    compiled: Manifest,
    conversion: Any,
    example: Any,
    *,
    held_out: Any = None,
    count: int = 1000,
    tolerance: float = 1e-5,
) -> Check:
    """Run both forms of the bundle in ``bundle_dir`` on the check rows, every method of ``conversion.methods``."""
    from shipyard.handler.compile import CONVERTERS
    from shipyard.handler.flavors import flavor_module

    converter = importlib.import_module(CONVERTERS[native.flavor]) if native.flavor in CONVERTERS else None
    generate = getattr(converter, "generate", None)
    parts = _parts(native.input, example, held_out, count, generate, native)
    rows = _concat([batch for _, batch in parts])
    origins = [(origin, _length(batch)) for origin, batch in parts]
    total = sum(length for _, length in origins)
    answers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method in conversion.methods:
        ours = flavor_module(native.flavor).load(bundle_dir, _with_method(native, method))
        theirs = flavor_module(compiled.flavor).load(bundle_dir, _with_method(compiled, method))
        answers[method] = (np.asarray(ours(rows)), np.asarray(theirs(rows)))
    labels_equal = True
    max_error = 0.0
    first = ""
    for method, (ours, theirs) in answers.items():
        equal, error, difference = _compare_one(method, ours, theirs, tolerance)
        labels_equal &= equal
        max_error = max(max_error, error)
        if difference and not first:
            row, text = difference
            first = f"row {_where(row, origins)}, {method}: {text}" if row >= 0 else f"{method}: {text}"
            if not equal and row >= 0:
                first += _tie(answers, row)
    return Check(total, tuple(conversion.methods), labels_equal, tolerance, max_error, first)


def generate_rows(schema: Schema, seen: list[np.ndarray], count: int, rng: np.random.Generator) -> np.ndarray | None:
    """``count`` rows in the ranges of the rows ``seen``; None when the schema is not a numeric tensor."""
    if schema.kind != "tensor" or schema.dtype == "string" or not seen or count <= 0:
        return None
    base = np.concatenate([np.asarray(s).reshape(len(s), -1) for s in seen]).astype(np.float64)
    base = base[np.isfinite(base).all(axis=1)]  # ranges from the finite rows (NaN is the schema's business)
    if base.size == 0:
        return None
    low, high = base.min(axis=0), base.max(axis=0)
    integral = (base == np.round(base)).all(axis=0)
    flat = low == high
    spread = np.where(integral, 1.0, 0.1 * np.maximum(1.0, np.abs(low)))
    low, high = np.where(flat, low - spread, low), np.where(flat, high + spread, high)
    columns = base.shape[1]
    values = np.empty((count, columns), dtype=np.float64)
    for j in range(columns):
        if schema.dtype == "bool":
            values[:, j] = rng.integers(0, 2, size=count)
        elif integral[j]:
            values[:, j] = rng.integers(int(low[j]), int(high[j]) + 1, size=count)
        else:
            values[:, j] = rng.uniform(low[j], high[j], size=count)
    shape = np.asarray(seen[0]).shape[1:]
    return values.reshape(count, *shape).astype(schema.dtype)


def _parts(
    schema: Schema, example: Any, held_out: Any, count: int, generate: Any, manifest: Manifest
) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = []
    if example is not None:
        parts.append(("example", _coerce(schema, example, "example")))
    held = _coerce(schema, held_out, "held_out") if held_out is not None else None
    rng = np.random.default_rng(SEED)
    if generate is not None:
        generated = generate(manifest, example, held_out, count, rng)
    else:
        seen = [batch for _, batch in parts if isinstance(batch, np.ndarray)]
        if isinstance(held, np.ndarray):
            seen.append(held)
        generated = generate_rows(schema, seen, count, rng)
    if generated is not None and _length(generated):
        parts.append(("generated", generated))
    if held is not None:
        parts.append(("held-out", held))
    if not parts:
        raise BundleError("nothing to check the compiled model on: pass example= (and held_out=) to save")
    return parts


def _coerce(schema: Schema, rows: Any, name: str) -> Any:
    if type(rows).__name__ == "DataFrame" or schema.kind == "any":
        return rows
    try:
        return schema.coerce(rows.tolist() if isinstance(rows, np.ndarray) and rows.dtype.kind in "USO" else rows)[0]
    except Exception as exc:
        raise BundleError(f"{name} does not fit the bundle's input schema: {exc}") from exc


def _concat(batches: list[Any]) -> Any:
    if all(isinstance(b, np.ndarray) for b in batches):
        return np.concatenate(batches)
    return [item for batch in batches for item in batch]


def _length(batch: Any) -> int:
    return len(batch)


def _with_method(manifest: Manifest, method: str) -> Manifest:
    return replace(manifest, options={**manifest.options, "method": method})


def _compare_one(
    method: str, ours: np.ndarray, theirs: np.ndarray, tolerance: float
) -> tuple[bool, float, tuple[int, str] | None]:
    """(labels equal, max |Δ| of floats, the first differing row and what differs)."""
    if ours.shape != theirs.shape:
        what = f"shape {ours.shape} (native) vs {theirs.shape} (onnx)"
        return ours.dtype.kind == "f", 0.0, (-1, what)  # every row differs: no row to name
    count = len(ours)
    a, b = ours.reshape(count, -1), theirs.reshape(count, -1)
    if ours.dtype.kind != "f":  # labels: integers, booleans, strings, exactly
        same = np.asarray(a == b, dtype=bool).reshape(count, -1).all(axis=1)
        bad = np.flatnonzero(~same)
        if not len(bad):
            return True, 0.0, None
        row = int(bad[0])
        return False, 0.0, (row, f"{_value(ours[row])} (native) vs {_value(theirs[row])} (onnx)")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    error = np.where(both_nan, 0.0, np.abs(a64 - b64))
    error = np.where(np.isnan(error), np.inf, error)
    bound = tolerance * np.maximum(1.0, np.abs(np.nan_to_num(a64)))
    largest = float(error.max()) if error.size else 0.0
    over = np.argwhere(error > bound)
    if not len(over):
        return True, largest, None
    row, column = (int(i) for i in over[0])
    column_text = f" column {column}" if a.shape[1] > 1 else ""
    text = (
        f"{_value(a64[row, column])} (native) vs {_value(b64[row, column])} (onnx){column_text}; "
        f"|Δ| {error[row, column]:.3g} > {tolerance:g}·max(1, |native|)"
    )
    return True, largest, (row, text)


def _where(row: int, origins: list[tuple[str, int]]) -> str:
    start = 0
    for origin, length in origins:
        if row < start + length:
            return f"{row - start} ({origin})"
        start += length
    return str(row)


def _tie(answers: dict[str, tuple[np.ndarray, np.ndarray]], row: int) -> str:
    """'; native scores tie at 0.35' when the native probabilities of the row have equal top two."""
    scores = answers.get("predict_proba")
    if scores is None or scores[0].ndim != 2 or scores[0].shape[1] < 2:
        return ""
    top = np.sort(scores[0][row].astype(np.float64))[::-1]
    return f"; native scores tie at {top[0]:g}" if top[0] == top[1] else ""


def _value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return str(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
