"""``shipyard monitor bias``: SageMaker Clarify's pre- and post-training bias metrics, checked against thresholds.

    result = run_bias(Path("train.parquet"), Path("bias/"), label="y", facets=["gender", "age>40"],
                      predicted="pred", group_by="region")
    result.violations        # [{"facet": "gender", "facet_value": "female", "metric_name": "DI", …}]

Writes ``analysis.json`` (Clarify's format, every metric smclarify 0.5 computes, with its values and errors),
``bias_violations.json`` and ``report.html`` (with ``report/``: the HTML report of
:mod:`shipyard.monitor.report`). The violations are in the layout of Model Monitor's bias violations, but with
``constraint_check_type`` ``bias_threshold_check`` — Shipyard's own check type, for a band set on a single
analysis (Model Monitor has only ``bias_drift_check``, against a baseline). A metric outside its ``[low,
high]`` band is a violation when that is beyond sampling error (:mod:`shipyard.monitor.bias_judge`: tested at
the band's edge, Bonferroni over the run); outside but within sampling error it is a problem ("not
significant"). A group of fewer than 50 rows, or a metric that is an error or infinite, is a problem
(reported), never a violation. How facets, labels and predictions are grouped:
:mod:`shipyard.monitor.groups`; the formulas: :mod:`shipyard.monitor.bias_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.errors import MonitorError
from shipyard.monitor import bias_metrics as bm
from shipyard.monitor.bias_judge import MIN_GROUP_ROWS, critical_z, z_score
from shipyard.monitor.clarify import metric_entry, metric_value
from shipyard.monitor.columns import (
    feature_matrix,
    is_numeric,
    predicted_labels,
    read_table,
    row_count,
    schema_names,
    table_columns,
)
from shipyard.monitor.explain import bundle_predictor
from shipyard.monitor.formats import write_json
from shipyard.monitor.groups import FacetGroups, facet_groups, label_mask, missing_mask, parse_facet, predicted_mask
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.violations import bias_metric

__all__ = ["DEFAULT_THRESHOLDS", "MIN_GROUP_ROWS", "BiasResult", "bias_analysis", "bias_violations", "run_bias"]

# DI: the four-fifths rule, both ways; rate differences: 10 points (judged with their sampling error: bias_judge)
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "DI": (0.8, 1.25),
    **{name: (-0.1, 0.1) for name in ("DPPL", "DPL", "CDDL", "CDDPL", "AD", "RD", "DAR", "DRR")},
}
ALIASES = {"DCAcc": "DCA"}
_BUNDLE_PREDICTIONS = "__shipyard_predicted__"  # the column of a bundle's predictions


@dataclass
class BiasResult:
    document: dict[str, Any]
    violations: list[dict[str, Any]]
    problems: Problems
    out: Path
    rows: int
    group_sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    report: Path | None = None  # report.html
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)  # the bands judged (defaults + given)


# -- the analysis ------------------------------------------------------------------------------------
def _missing_column(columns: Mapping[str, np.ndarray], name: str, argument: str) -> np.ndarray:
    if name not in columns:
        raise ArgumentError(argument, name, f"no such column (columns: {', '.join(list(columns)[:12])})")
    return np.asarray(columns[name])


def _group_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    missing = missing_mask(values)
    present = values[~missing]
    if values.dtype.kind == "O":
        present = present.astype(str)
    uniques, inverse = np.unique(present, return_inverse=True)
    codes = np.full(len(values), -1, np.int64)
    codes[~missing] = inverse
    return codes, len(uniques)


def _features(columns: Mapping[str, np.ndarray], skip: set[str]) -> np.ndarray | None:
    """The columns FT uses (all but the facet, label and prediction, as smclarify), or None if one is text."""
    chosen = [np.asarray(v) for k, v in columns.items() if k not in skip]
    if any(v.dtype.kind not in "biuf" for v in chosen):
        return None
    n = len(next(iter(columns.values())))
    return np.column_stack([v.astype(np.float64) for v in chosen]) if chosen else np.empty((n, 0))


def _entries(values: Mapping[str, bm.Value]) -> list[dict[str, Any]]:
    return [
        metric_entry(name, None, value.error) if isinstance(value, bm.Unavailable) else metric_entry(name, value)
        for name, value in sorted(values.items())
    ]


def bias_analysis(
    columns: Mapping[str, np.ndarray],
    *,
    label: str,
    facets: Sequence[str],
    positive: Sequence[str] = ("1",),
    predicted: str | None = None,
    group_by: str | None = None,
    probability_threshold: float = 0.5,
    pre_training: bool = True,
    post_training: bool = True,
    flip_test: bool = True,
    evidence: dict[tuple[str, str], bm.Evidence] | None = None,
) -> dict[str, Any]:
    """The analysis.json document of Clarify's bias metrics over ``columns`` (one 1-D array per column).

    ``evidence``, when given, is filled with each (facet, value_or_threshold)'s group sizes and the standard
    errors of its rate metrics (from the same counts; what judging them needs, kept out of analysis.json)."""
    if not facets:
        raise ArgumentError("facets", None, "name at least one facet column")
    y_values = _missing_column(columns, label, "label")
    p_values = _missing_column(columns, predicted, "predicted") if predicted is not None else None
    y, label_text = label_mask(y_values, positive)
    if not y.any():
        seen = ", ".join(map(str, np.unique(y_values[~missing_mask(y_values)].astype(str))[:8]))
        raise ArgumentError("positive", ",".join(positive), f"no label of {label} is positive (values: {seen})")
    shown = None if predicted == _BUNDLE_PREDICTIONS else predicted
    p = (
        predicted_mask(p_values, y_values, positive, probability_threshold, names=(shown, label))
        if p_values is not None
        else None
    )
    group = _group_codes(_missing_column(columns, group_by, "group_by")) if group_by is not None else None
    document: dict[str, Any] = {"version": "1.0"}
    sections = {
        "pre_training_bias_metrics": pre_training,
        "post_training_bias_metrics": post_training and p is not None,
    }
    for section, wanted in sections.items():
        if wanted:
            document[section] = {"label": label, "label_value_or_threshold": label_text, "facets": {}}
    ge = bm.generalized_entropy(_overall(y, p)) if p is not None else None
    for text in facets:
        spec = parse_facet(text)
        groups = facet_groups(_missing_column(columns, spec.name, "facets"), spec)
        tables = bm.count_tables(groups.codes, len(groups.names), y, p, *(group or (None, 0)))
        if evidence is not None:
            for k, name in enumerate(groups.names):
                label_cdd = tables.cdd_tables(k, predicted=False)
                predicted_cdd = tables.cdd_tables(k, predicted=True)
                evidence[(spec.name, name)] = bm.evidence(tables.versus(k), label_cdd, predicted_cdd)
        features = None
        if p is not None and post_training and flip_test:
            features = _features(columns, {spec.name, label, *([predicted] if predicted else [])})
        for section in sections:
            if section in document:
                document[section]["facets"][spec.name] = _facet_entries(
                    section, groups, tables, ge, features, p, flip_test
                )
    return document


def _overall(y: np.ndarray, p: np.ndarray | None) -> np.ndarray:
    code = y.astype(np.int64) * 2 + (np.zeros(len(y), np.int64) if p is None else p.astype(np.int64))
    return np.bincount(code, minlength=4).reshape(2, 2)


def _facet_entries(
    section: str,
    groups: FacetGroups,
    tables: bm.CountTables,
    ge: bm.Value | None,
    features: np.ndarray | None,
    p: np.ndarray | None,
    flip_test: bool,
) -> list[dict[str, Any]]:
    entries = []
    for k, name in enumerate(groups.names):
        counts = tables.versus(k)
        if section == "pre_training_bias_metrics":
            values = bm.pre_training(counts, tables.cdd_tables(k, predicted=False))
        else:
            ft = bm.flip_test(features, groups.codes == k, p) if flip_test and p is not None else None
            values = bm.post_training(counts, tables.cdd_tables(k, predicted=True), ge, ft)
        entries.append({"value_or_threshold": name, "metrics": _entries(values)})
    return entries


# -- thresholds --------------------------------------------------------------------------------------
def _thresholds(given: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    chosen = dict(DEFAULT_THRESHOLDS)
    known = set(bm.PRE_TRAINING) | set(bm.POST_TRAINING)
    for name, (low, high) in (given or {}).items():
        metric = ALIASES.get(name, name)
        if metric not in known:
            raise ArgumentError("thresholds", name, f"no such metric (one of {', '.join(sorted(known))})")
        if not low <= high:
            raise ArgumentError("thresholds", f"{name}={low}:{high}", "the low end is above the high end")
        chosen[metric] = (low, high)
    return chosen


def bias_violations(
    document: Mapping[str, Any],
    thresholds: Mapping[str, tuple[float, float]],
    sizes: Mapping[tuple[str, str], int],
    rows: int,
    problems: Problems,
    evidence: Mapping[tuple[str, str], bm.Evidence] | None = None,
) -> list[dict[str, Any]]:
    """Metrics outside their band, as ``bias_threshold_check`` entries (Shipyard's check type, in Model
    Monitor's layout). Groups (``sizes``: the rows of each facet value, of ``rows`` in all) with fewer than 50
    rows on either side, and errors, become problems. With ``evidence`` (from :func:`bias_analysis`), a metric
    that has a standard error is a violation only when it is past its band's edge by more than
    ``critical_z(m)`` standard errors (m: such pairs judged); otherwise it is a "not significant" problem."""
    violations: list[dict[str, Any]] = []
    tested: list[tuple[str, str, str, float, tuple[float, float], float]] = []
    pairs = 0
    for section in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for facet, entries in ((document.get(section) or {}).get("facets") or {}).items():
            for entry in entries:
                pairs += _entry_violations(
                    facet, entry, thresholds, sizes, rows, problems, evidence, violations, tested
                )
    critical = critical_z(pairs)
    for facet, group, name, value, (low, high), z in tested:
        if z > critical:
            violations.append(bias_metric(facet, group, name, value, "bias_threshold_check"))
        else:
            problems.add(
                "not significant",
                f"facet {facet} = {group}: {name} {value:.4g} is outside [{low:g}, {high:g}] but within sampling "
                f"error (z = {z:.2f} past the edge ≤ {critical:.2f}, Bonferroni over {pairs} tests); not a violation",
            )
    return violations


def _entry_violations(
    facet: str,
    entry: Mapping[str, Any],
    thresholds: Mapping[str, tuple[float, float]],
    sizes: Mapping[tuple[str, str], int],
    rows: int,
    problems: Problems,
    evidence: Mapping[tuple[str, str], bm.Evidence] | None,
    found: list[dict[str, Any]],
    tested: list[tuple[str, str, str, float, tuple[float, float], float]],
) -> int:
    """Appends plain band violations to ``found`` and the tests of metrics with a standard error to
    ``tested`` (those outside the band); returns how many of the latter were judged."""
    group = str(entry["value_or_threshold"])
    size = sizes.get((facet, group))
    judged = [m for m in entry["metrics"] if m["name"] in thresholds]
    if size is not None and min(size, rows - size) < MIN_GROUP_ROWS:
        if judged:
            problems.add(
                "small group",
                f"facet {facet} = {group!r}: {size:,} rows in the group, {rows - size:,} outside "
                f"(< {MIN_GROUP_ROWS} on one side); not judged",
            )
        return 0
    known = evidence.get((facet, group)) if evidence is not None else None
    pairs = 0
    for metric in judged:
        value = metric_value(metric)
        if value is None or not np.isfinite(value):
            problems.add(
                "metric unavailable",
                f"facet {facet} = {group}: {metric['name']} is {metric.get('error') or metric['value']}; not judged",
            )
            continue
        name = metric["name"]
        low, high = thresholds[name]
        if known is not None and name in known.errors:
            pairs += 1
            if not low <= value <= high:
                tested.append((facet, group, name, value, (low, high), z_score(name, value, low, high, known)))
        elif not low <= value <= high:
            found.append(bias_metric(facet, group, name, value, "bias_threshold_check"))
    return pairs


def _group_sizes(columns: Mapping[str, np.ndarray], facets: Sequence[str]) -> dict[tuple[str, str], int]:
    sizes = {}
    for text in facets:
        spec = parse_facet(text)
        groups = facet_groups(np.asarray(columns[spec.name]), spec)
        counts = np.bincount(groups.codes + 1, minlength=len(groups.names) + 1)
        for k, name in enumerate(groups.names):
            sizes[(spec.name, name)] = int(counts[k + 1])
    return sizes


# -- files -------------------------------------------------------------------------------------------
def _bundle_predictions(bundle: Path, table: pa.Table, data: Path) -> np.ndarray:
    """The bundle, loaded in this process, asked about the feature columns its schema names (one label or
    score a row: see :func:`shipyard.monitor.columns.predicted_labels`)."""
    from shipyard.monitor.baseline import schema_features

    names, _ = schema_features(bundle)
    if not names:
        raise MonitorError(f"{bundle}: its schema names no input features (bias reads them from the data by name)")
    predict, _ = bundle_predictor(bundle)
    rows = feature_matrix(table_columns(table.select([n for n in names if n in table.column_names])), names, data)
    return predicted_labels(predict(rows))


def run_bias(
    data: Path,
    out: Path,
    *,
    label: str,
    facets: Sequence[str],
    positive: Sequence[str] = ("1",),
    predicted: str | None = None,
    bundle: Path | None = None,
    group_by: str | None = None,
    probability_threshold: float = 0.5,
    thresholds: Mapping[str, tuple[float, float]] | None = None,
    write_report: bool = True,
) -> BiasResult:
    """The steps: read the columns needed → (predict with the bundle) → analysis → judge → write the two files
    (and, with ``write_report``, ``report.html``: :func:`shipyard.monitor.report.make_report` of ``out``)."""
    if predicted is not None and bundle is not None:
        raise ArgumentError("bundle", str(bundle), "give either predicted or bundle, not both")
    chosen = _thresholds(thresholds)
    data = Path(data)
    names = schema_names(data)
    specs = [parse_facet(text) for text in facets]
    wanted = [("label", label), *(("facets", s.name) for s in specs), ("predicted", predicted), ("group_by", group_by)]
    needed = [name for _, name in wanted if name is not None]
    for argument, name in wanted:
        if name is not None and name not in names:
            raise ArgumentError(argument, name, f"no such column in {data} (columns: {', '.join(names[:12])})")
    table = read_table(data, list(dict.fromkeys(needed)))
    if not table.num_rows:
        raise MonitorError(f"{data}: holds no rows (only a header)")
    columns = table_columns(table)
    post = predicted is not None or bundle is not None
    extra: dict[str, np.ndarray] = {}
    predicted_name = predicted
    if post:
        everything = read_table(data, None) if bundle is not None else None
        extra = _ft_columns(data, names, set(needed), everything)
        if bundle is not None:
            assert everything is not None
            predicted_name = _BUNDLE_PREDICTIONS
            columns[predicted_name] = _bundle_predictions(bundle, everything, data)
    problems = Problems()
    evidence: dict[tuple[str, str], bm.Evidence] = {}
    document = bias_analysis(
        {**columns, **extra},
        label=label,
        facets=facets,
        positive=positive,
        predicted=predicted_name,
        group_by=group_by,
        probability_threshold=probability_threshold,
        pre_training=True,
        post_training=post,
        evidence=evidence,
    )
    _missing_problems(columns, label, specs, problems)
    sizes = _group_sizes(columns, facets)
    violations = bias_violations(document, chosen, sizes, table.num_rows, problems, evidence)
    out = Path(out)
    write_json(out / "analysis.json", document)
    write_json(out / "bias_violations.json", {"version": "1.0", "violations": violations})
    report = None
    if write_report:
        from shipyard.monitor.report import make_report

        report = make_report(out, thresholds=chosen).html_path
    return BiasResult(document, violations, problems, out, table.num_rows, sizes, report, chosen)


_TEXT_MARK = np.array(["text"], dtype=object)


def _ft_columns(data: Path, names: list[str], needed: set[str], everything: pa.Table | None) -> dict[str, np.ndarray]:
    """The other columns FT uses: all numeric ones (a text column stands in as one mark, so FT reports
    smclarify's 'does not support non-numeric columns' without reading it)."""
    rest = [n for n in names if n not in needed]
    if not rest:
        return {}
    if everything is not None:
        table = everything.select(rest)
    else:
        table = read_table(data, rest) if data.suffix.lower() != ".parquet" else None
    if table is None:
        import pyarrow.parquet as pq

        schema = pq.read_schema(data)
        numeric = [n for n in rest if is_numeric(schema.field(n).type)]
        text = [n for n in rest if n not in numeric]
        found = table_columns(read_table(data, numeric))
        if text:
            rows = len(next(iter(found.values()))) if numeric else row_count(data)
            found[text[0]] = np.repeat(_TEXT_MARK, rows)
        return {n: found[n] for n in rest if n in found}
    return table_columns(table)


def _missing_problems(columns: Mapping[str, np.ndarray], label: str, specs: Sequence[Any], problems: Problems) -> None:
    for name in [label, *(s.name for s in specs)]:
        missing = int(missing_mask(columns[name]).sum())
        if missing:
            what = "label" if name == label else "facet"
            problems.add("missing values", f"{what} {name}: {missing:,} missing values (Clarify keeps them; see docs)")
