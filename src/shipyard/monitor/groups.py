"""Facets, labels and predictions as Clarify groups them: typing rule, boolean masks, value_or_threshold strings.

    spec = parse_facet("age>40")                      # or "gender" (one vs all), "gender=female,other"
    groups = facet_groups(columns["age"], spec)       # FacetGroups(codes, names): names[k] is "(40.0, 80.0]"
    positive, text = label_mask(columns["y"], ["1"])  # the positive rows, and label_value_or_threshold

smclarify 0.5's rules (``common.series_datatype``): a column is *categorical* when more than one value is
given, when it is bool or text, or when it is integral (ints, or text that casts to int) with fewer than 5% of
its present values distinct; floats and the other integral columns are *continuous*. A categorical column
with values is sensitive where it holds one of them (``value_or_threshold`` = the values joined with ``,``);
without values it is taken one value against all the others, in order of first appearance, a missing value
included (its group is empty, as in smclarify: ``NaN == NaN`` is false). A continuous column needs one
threshold ``t``: the group is ``t < x ≤ max`` and ``value_or_threshold`` is pandas' interval string,
``(40.0, 80.0]``. Missing values are never in a value's group, a threshold's group or the positive labels.

Where Shipyard differs: a label or prediction column of floats that are all whole numbers (0/1 with a
missing value is read as float) is typed as integers, not as a continuous column (smclarify would take the
positive value ``1`` for the threshold ``y > 1``, and find no positive label at all); ``NAME>T`` forces a
threshold on any numeric column; bool columns match ``true``/``false``/``1``/``0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import MonitorError
from shipyard.monitor.problems import ArgumentError

__all__ = [
    "CATEGORICAL",
    "CONTINUOUS",
    "FacetGroups",
    "FacetSpec",
    "column_type",
    "facet_groups",
    "interval",
    "is_scores",
    "label_mask",
    "missing_mask",
    "parse_facet",
    "predicted_mask",
]

CATEGORICAL = "categorical"
CONTINUOUS = "continuous"
UNIQUENESS_THRESHOLD = 0.05  # smclarify's constants.UNIQUENESS_THRESHOLD


@dataclass(frozen=True)
class FacetSpec:
    """``gender`` (one vs all), ``gender=female,other`` (values) or ``age>40`` (a threshold, forced)."""

    name: str
    values: tuple[str, ...] | None = None
    threshold: float | None = None

    @property
    def text(self) -> str:
        if self.threshold is not None:
            return f"{self.name}>{self.threshold:g}"
        return self.name + ("=" + ",".join(self.values) if self.values else "")


@dataclass
class FacetGroups:
    """One group per name: the rows of group ``k`` have ``codes == k`` (−1: in no group)."""

    codes: np.ndarray
    names: list[str]


def parse_facet(text: str) -> FacetSpec:
    """A facet as the CLI spells it."""
    cut = min((i for i in (text.find("="), text.find(">")) if i > 0), default=-1)
    if cut < 0:
        if not text.strip():
            raise ArgumentError("facets", repr(text), "name a column")
        return FacetSpec(text.strip())
    name, sign, rest = text[:cut].strip(), text[cut], text[cut + 1 :].strip()
    if not rest:
        raise ArgumentError("facets", repr(text), "give a value after the '=' (or a threshold after '>')")
    if sign == ">":
        return FacetSpec(name, threshold=_number(rest, "facets", text))
    return FacetSpec(name, values=tuple(v.strip() for v in rest.split(",")))


def _number(text: str, argument: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentError(argument, repr(whole), f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ArgumentError(argument, repr(whole), "the threshold must be a finite number")
    return value


# -- typing ------------------------------------------------------------------------------------------
def missing_mask(values: np.ndarray) -> np.ndarray:
    """Missing values: NaN, or None (or NaN) in an object column."""
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values))
    if values.dtype.kind == "O":
        try:
            return np.asarray(pa.array(values, from_pandas=True).is_null().to_numpy(zero_copy_only=False), bool)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        return np.fromiter((v is None or (isinstance(v, float) and v != v) for v in values), bool, len(values))
    return np.zeros(len(values), bool)


def _as_integers(values: np.ndarray) -> np.ndarray | None:
    """An object column as int64 when every value casts to int (as pandas' ``astype("int64")``), else None."""
    try:
        return np.asarray(values.astype(np.int64))
    except (ValueError, TypeError, OverflowError):
        return None


def _distinct_share(values: np.ndarray) -> float:
    present = values[~missing_mask(values)]
    if not len(present):
        return 0.0
    return len(np.unique(present)) / len(present)


def column_type(values: np.ndarray, given: Sequence[str] | None = None, *, whole_floats: bool = False) -> str:
    """Clarify's rule: categorical or continuous (``whole_floats``: floats that are all integral count as ints)."""
    if given is not None and len(given) > 1:
        return CATEGORICAL
    kind = values.dtype.kind
    if kind == "b":
        return CATEGORICAL
    if kind == "f":
        present = values[~np.isnan(values)]
        if not (whole_floats and bool(np.all(present == np.round(present)))):
            return CONTINUOUS
    elif kind == "O":
        integers = _as_integers(values)
        if integers is None:
            return CATEGORICAL
        values = integers
    elif kind not in "iu":
        return CATEGORICAL
    return CONTINUOUS if _distinct_share(values) >= UNIQUENESS_THRESHOLD else CATEGORICAL


def _numeric(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    try:
        return np.array([np.nan if v is None else float(v) for v in values], np.float64)
    except (TypeError, ValueError):
        raise ArgumentError("facets", what, "a threshold needs a numeric column") from None


# -- groups ------------------------------------------------------------------------------------------
def interval(data_max: float, threshold: float) -> tuple[str, float, float] | None:
    """smclarify's ``_interval_index``: breaks ``sorted([t, max])`` (max left out when ``|max| == t``);
    the interval string and its ends, or None when there is a single break (an empty group, named "")."""
    if abs(data_max) == threshold or math.isnan(data_max):
        return None
    low, high = sorted((threshold, data_max))
    return f"({float(low)!r}, {float(high)!r}]", low, high


def _threshold_group(numbers: np.ndarray, threshold: float, data_max: float | None = None) -> tuple[np.ndarray, str]:
    present = numbers[~np.isnan(numbers)]
    if data_max is None:
        data_max = float(present.max()) if len(present) else math.nan
    top = data_max
    found = interval(top, threshold)
    if found is None:
        return np.zeros(len(numbers), bool), ""
    text, low, high = found
    with np.errstate(invalid="ignore"):
        return (numbers > low) & (numbers <= high), text


def _converted(values: np.ndarray, given: Sequence[str]) -> list[object]:
    """The given strings as the column's type (smclarify retries with them when nothing matched as given)."""
    kind = values.dtype.kind
    if kind == "b":
        return [text.strip().lower() in ("true", "1") for text in given]
    if kind in "iu":
        try:
            return [int(text) for text in given]
        except ValueError:
            return [float(text) for text in given]
    if kind == "f":
        return [float(text) for text in given]
    return list(given)


def _in_values(values: np.ndarray, given: Sequence[str]) -> np.ndarray:
    if values.dtype.kind == "O":
        found = np.isin(values, np.array(list(given), dtype=object))
        if found.any():
            return found
        first = next((v for v in values if v is not None), None)
        if isinstance(first, (bool, int, float, np.number)) and not isinstance(first, str):
            try:
                return np.isin(values, np.array(_converted(np.array([first]), given), dtype=object))
            except ValueError:
                return found
        return found
    try:
        return np.isin(values, np.array(_converted(values, given)))
    except ValueError:
        return np.zeros(len(values), bool)


def _one_vs_all(values: np.ndarray) -> FacetGroups:
    missing = missing_mask(values)
    if missing.all():  # only missing values: pandas' unique() is [nan], a group no row is in
        return FacetGroups(np.full(len(values), -1, np.int64), ["nan"] if len(values) else [])
    array = pa.array(values, from_pandas=True, mask=missing if values.dtype.kind == "O" else None)
    encoded = pc.dictionary_encode(array)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    names = [_name(v) for v in encoded.dictionary.to_pylist()]
    if missing.any():  # pandas' unique() lists the missing value too, where it first appears
        first = int(np.argmax(missing))
        position = len(np.unique(codes[:first][codes[:first] >= 0]))
        names.insert(position, "nan")
        codes = np.where(codes >= position, codes + 1, codes)
        codes[missing] = -1
    return FacetGroups(codes, names)


def _name(value: object) -> str:
    return str(value)


def facet_groups(values: np.ndarray, spec: FacetSpec) -> FacetGroups:
    """The facet's groups (one per value_or_threshold) as Clarify forms them."""
    if spec.threshold is not None:
        sensitive, text = _threshold_group(_numeric(values, spec.text), spec.threshold)
        return FacetGroups(np.where(sensitive, 0, -1), [text])
    if column_type(values, spec.values) == CATEGORICAL:
        if spec.values is None:
            return _one_vs_all(values)
        return FacetGroups(np.where(_in_values(values, spec.values), 0, -1), [",".join(spec.values)])
    if spec.values is None:
        raise ArgumentError(
            "facets",
            spec.name,
            f"a continuous column ({_distinct_share(values):.0%} of its values distinct); give a threshold, "
            f"e.g. '{spec.name}>{_example(values)}', or values with '{spec.name}=V1,V2'",
        )
    threshold = _number(spec.values[0], "facets", spec.text)
    sensitive, text = _threshold_group(_numeric(values, spec.text), threshold)
    return FacetGroups(np.where(sensitive, 0, -1), [text])


def _example(values: np.ndarray) -> str:
    numbers = _numeric(values, "")
    return f"{float(np.nanmedian(numbers)):g}" if len(numbers) else "0"


# -- labels and predictions --------------------------------------------------------------------------
def _label_rule(positive: Sequence[str]) -> tuple[float | None, tuple[str, ...]]:
    if len(positive) == 1 and positive[0].strip().startswith(">"):
        text = positive[0].strip()[1:].strip()
        return _number(text, "positive", positive[0]), ()
    if not positive:
        raise ArgumentError("positive", None, "give the positive label values (or '>T')")
    return None, tuple(positive)


def label_mask(label: np.ndarray, positive: Sequence[str]) -> tuple[np.ndarray, str]:
    """The rows whose label is positive, and ``label_value_or_threshold`` (a threshold's interval ends at
    the largest label; the predictions' at the largest label or prediction, as in smclarify)."""
    threshold, values = _label_rule(positive)
    if threshold is None and column_type(label, values, whole_floats=True) == CONTINUOUS:
        threshold = _number(values[0], "positive", values[0])
    if threshold is None:
        return _in_values(label, values), ",".join(values)
    return _threshold_group(_numeric(label, "positive"), threshold)


def is_scores(predicted: np.ndarray) -> bool:
    """Probabilities rather than labels: floats in [0, 1], not all of them 0 or 1."""
    if predicted.dtype.kind != "f":
        return False
    present = predicted[~np.isnan(predicted)]
    return (
        bool(len(present))
        and bool(((present >= 0) & (present <= 1)).all())
        and not bool(np.isin(present, (0.0, 1.0)).all())
    )


def predicted_mask(
    predicted: np.ndarray,
    label: np.ndarray,
    positive: Sequence[str],
    probability_threshold: float = 0.5,
    *,
    names: tuple[str | None, str] | None = None,
) -> np.ndarray:
    """The rows predicted positive: a score at or above ``probability_threshold``, or a predicted label that is
    positive by the label's rule (the prediction must be typed like the label, as smclarify requires).

    ``names``: the prediction column (None: a model's predictions) and the label column, for the messages.
    Refused (:class:`ArgumentError`, exit 2): predictions of text where the label is numbers (or the other
    way), of another Clarify type, or with no positive label value among values the label never takes
    (``--predicted`` naming the wrong column); predictions that are all a negative label value are accepted.
    """
    if is_scores(predicted):
        with np.errstate(invalid="ignore"):
            return np.asarray(predicted >= probability_threshold)
    threshold, values = _label_rule(positive)
    label_text, predicted_text = _is_text(label), _is_text(predicted)
    if label_text != predicted_text:
        _refuse(
            names, predicted, label,
            f"the predictions are {'text' if predicted_text else 'numbers'}, the label "
            f"{'text' if label_text else 'numbers'}: give predicted labels typed like the label (or scores in [0, 1])",
        )  # fmt: skip
    if threshold is None:
        label_kind = column_type(label, values, whole_floats=True)
        predicted_kind = column_type(predicted, values, whole_floats=True)
        if predicted_kind != label_kind:
            _refuse(
                names, predicted, label,
                f"the predictions are typed {predicted_kind}, the label {label_kind}: give predicted labels of the "
                "label's kind (or scores in [0, 1])",
            )  # fmt: skip
        if label_kind == CATEGORICAL:
            found = _in_values(predicted, values)
            if not found.any() and not _within(predicted, label):
                _refuse(
                    names, predicted, label,
                    f"no prediction is a positive label value ({', '.join(values)}), and the predictions hold "
                    "values the label never takes: give the column of predicted labels (or scores in [0, 1])",
                )  # fmt: skip
            return found
        threshold = _number(values[0], "positive", values[0])
    numbers = _numeric(predicted, "predicted")
    both = np.concatenate([_numeric(label, "positive"), numbers])
    present = both[~np.isnan(both)]
    return _threshold_group(numbers, threshold, float(present.max()) if len(present) else math.nan)[0]


def _is_text(values: np.ndarray) -> bool:
    """Text (not numbers, booleans or numbers written as text): what a prediction must share with the label."""
    if values.dtype.kind != "O":
        return False
    present = values[~missing_mask(values)]
    if any(isinstance(v, bool | int | float | np.number) for v in present[:1]):
        return False
    try:
        [float(v) for v in present]
    except (TypeError, ValueError):
        return True
    return False


def _distinct(values: np.ndarray) -> list[str]:
    present = values[~missing_mask(values)]
    return sorted({_value_text(v) for v in present.tolist()})


def _value_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _within(predicted: np.ndarray, label: np.ndarray) -> bool:
    """Every predicted value is one the label takes (compared as text: ``1`` and ``1.0`` alike)."""
    return set(_distinct(predicted)) <= set(_distinct(label))


def _sample(values: np.ndarray) -> str:
    distinct = _distinct(values)
    return ", ".join(repr(v) for v in distinct[:5]) + (f", … ({len(distinct)} values)" if len(distinct) > 5 else "")


def _refuse(names: tuple[str | None, str] | None, predicted: np.ndarray, label: np.ndarray, problem: str) -> None:
    column, label_name = names if names is not None else (None, "")
    detail = f"{problem} (predictions: {_sample(predicted)}; label {label_name or ''}{': ' if label_name else ''}"
    detail = f"{detail}{_sample(label)})"
    if names is None:
        raise ArgumentError("predicted", None, detail)
    if column is None:
        raise MonitorError(f"the model's predictions: {detail}")
    raise ArgumentError("predicted", column, detail)
