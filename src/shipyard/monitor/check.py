"""``shipyard monitor check``: current data (captured traffic or a file) against a baseline.

    result = run_check(Path("capture/"), Path("baseline/"), Path("monitoring/"), since="24h")
    result.violations      # Model Monitor's constraint_violations.json entries
    result.drift           # drift.json: per-feature scores, thresholds, histograms, scores per window

One streaming pass: each chunk is profiled against the baseline's fixed bin edges (see :mod:`drift`), so
time and memory do not depend on how the rows are spread over files, and 1 M rows × 64 features fit in a
few hundred MB. What is checked, and at which thresholds, comes from the baseline's constraints.json
(:mod:`constraints`: per-feature overrides, checks turned off); the violations are worded as Model Monitor
words them (:mod:`violations`). Writes ``constraint_violations.json``, ``statistics.json`` (of the current
data) and ``drift.json`` into ``out``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MonitorError
from shipyard.monitor import violations as report
from shipyard.monitor.constraints import Settings
from shipyard.monitor.drift import (
    TEST_METHODS,
    CategoricalReference,
    NumericReference,
    categorical_scores,
    critical_value,
    holm,
    holm_levels,
    numeric_scores,
)
from shipyard.monitor.formats import feature_statistics, read_json, statistics_document, write_json
from shipyard.monitor.problems import Problems
from shipyard.monitor.profile import NumericProfile, StringProfile
from shipyard.monitor.profiler import Profiler
from shipyard.monitor.sources import Span, coalesced, iso_time, prefetched, read_chunks

__all__ = ["CATEGORICAL_METHODS", "NUMERIC_METHODS", "CheckResult", "run_check"]

NUMERIC_METHODS = frozenset({"auto", "wasserstein", "ks", "psi", "jensen_shannon"})
CATEGORICAL_METHODS = frozenset({"auto", "jensen_shannon", "chi_squared", "linf", "psi"})
_NUMERIC_TYPES = ("Integral", "Fractional")
_DISPLAY_BINS = 30


@dataclass
class CheckResult:
    violations: list[dict[str, Any]]
    drift: dict[str, Any]
    rows: int
    out: Path
    problems: Problems = field(default_factory=Problems)

    @property
    def drifted(self) -> list[str]:
        return [f["name"] for f in self.drift["features"] if f.get("drifted")]


@dataclass
class _Baseline:
    """What a check needs of the baseline directory: its features, how each is read, and its references."""

    path: Path
    settings: Settings
    names: list[str]
    kinds: dict[str, str]  # "numeric", "integer" or "string": how the profiler reads the column
    edges: dict[str, np.ndarray]  # the fixed bin edges a numeric feature is counted at
    refs: dict[str, NumericReference | CategoricalReference]

    @property
    def small_rows(self) -> int:
        return int(self.settings.config["shipyard_small_sample_rows"])


def run_check(
    source: Path,
    baseline: Path,
    out: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    window: str | None = "1h",
    thresholds: Mapping[str, float] | None = None,
    methods: Mapping[str, str] | None = None,
    header: bool = True,
    now: float | None = None,
) -> CheckResult:
    """Check ``source`` against the baseline in ``baseline`` and write the results into ``out``.

    The steps: load the baseline → profile the current data → judge it (violations, drift) → write.
    """
    reference = _load_baseline(baseline)
    span = Span.parse(since, until, window, now)
    problems = Problems()
    profiler = _profile(source, reference, span, header, problems)
    missing = [n for n in reference.names if profiler.present.get(n, 0) == 0]
    violations = _column_checks(reference, profiler, missing)
    drift_rows = _judge(reference, profiler, missing, thresholds or {}, methods or {}, violations)
    document = {
        "version": 1,
        "source": str(source),
        "baseline": str(baseline),
        "since": iso_time(span.start),
        "until": iso_time(span.end),
        "rows": profiler.rows,
        "window_seconds": span.window_s,
        "features": drift_rows,
        "windows": _windows(profiler, reference.refs, drift_rows, span.window_s),
        "problems": problems.to_dict(),
    }
    current = [
        feature_statistics(n, profiler.profiles.get(n), profiler.rows) for n in reference.names if n not in missing
    ]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "constraint_violations.json", {"violations": violations})
    write_json(out / "statistics.json", statistics_document(current, profiler.rows), indent=False)
    write_json(out / "drift.json", document)
    return CheckResult(violations, document, profiler.rows, out, problems)


def _load_baseline(baseline: Path) -> _Baseline:
    """statistics.json and constraints.json: the features, how to read each, the references drift is scored on."""
    statistics = read_json(baseline / "statistics.json", "statistics.json")
    settings = Settings.of(read_json(baseline / "constraints.json", "constraints.json"))
    features = statistics.get("features") or []
    if not features:
        raise MonitorError(f"{baseline}/statistics.json lists no features")
    reference = _Baseline(baseline, settings, [f["name"] for f in features], {}, {}, {})
    for feature in features:
        name, kind = feature["name"], feature.get("inferred_type")
        if kind in _NUMERIC_TYPES and "numerical_statistics" in feature:
            # whole numbers are counted where they are read: a data type check against Integral constraints
            integral = settings.features.get(name, {}).get("inferred_type") == "Integral"
            reference.kinds[name] = "integer" if integral else "numeric"
            try:
                numeric_ref = NumericReference.from_statistics(feature)
            except ValueError:
                continue
            reference.refs[name], reference.edges[name] = numeric_ref, numeric_ref.edges
        elif kind == "String":
            reference.refs[name] = CategoricalReference.from_statistics(feature)
            reference.kinds[name] = "string"
        else:
            reference.kinds[name] = "string"
    return reference


def _profile(source: Path, reference: _Baseline, span: Span, header: bool, problems: Problems) -> Profiler:
    """One streaming pass over ``source``: every feature profiled at the baseline's edges, per window."""
    profiler = Profiler(reference.kinds, edges=reference.edges, keep_small=reference.small_rows, window_s=span.window_s)
    chunks = read_chunks(
        source, names=reference.names, since=span.start, until=span.end, header=header, problems=problems
    )
    for chunk in prefetched(coalesced(chunks)):
        profiler.add(chunk)
    if not profiler.rows:
        period = f" since {iso_time(span.start)}" if span.start is not None else ""
        period += f" until {iso_time(span.end)}" if span.end is not None else ""
        detail = ("; problems: " + "; ".join(problems.summary())) if problems else ""
        raise MonitorError(f"{source}: no rows to check{period} (the window is empty){detail}")
    return profiler


def _column_checks(reference: _Baseline, profiler: Profiler, missing: list[str]) -> list[dict[str, Any]]:
    """Columns of the baseline the data lacks, and columns it has that the baseline does not."""
    settings, expected = reference.settings, len(reference.names)
    current_columns = expected - len(missing) + len(profiler.extra)
    found = [report.missing_column(n, current_columns, expected) for n in missing if settings.evaluated(n)]
    if settings.evaluates:
        found.extend(report.extra_column(n, current_columns, expected, rows) for n, rows in profiler.extra.items())
    return found


def _judge(
    reference: _Baseline,
    profiler: Profiler,
    missing: list[str],
    thresholds: Mapping[str, float],
    methods: Mapping[str, str],
    violations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each present feature's value checks and drift entry (violations appended to ``violations``); the tests
    among them Holm-corrected across features. Returns the drift entries."""
    settings = reference.settings
    drift_rows: list[dict[str, Any]] = []
    pvalues: dict[str, float] = {}
    for name in reference.names:
        if name in missing:
            continue
        profile = profiler.profiles[name]
        if settings.evaluated(name):
            violations.extend(_value_checks(name, profile, settings))
        ref = reference.refs.get(name)
        if ref is None:
            continue
        entry = _drift_entry(name, profile, ref, settings, thresholds, methods, reference.small_rows)
        # a feature whose constraints are off is scored, but neither flagged nor one of the tests corrected for
        if entry["evaluated"] and entry["method"] in TEST_METHODS and entry["score"] is not None:
            pvalues[name] = entry["score"]
        drift_rows.append(entry)
    adjusted, levels = holm(pvalues), holm_levels(pvalues)  # levels: 1 / (m - rank)
    for entry in drift_rows:
        if entry["name"] in adjusted:
            entry["p_adjusted"] = adjusted[entry["name"]]
            entry["drifted"] = adjusted[entry["name"]] < entry["threshold"]
        if entry["drifted"]:
            level = entry["threshold"] * levels.get(entry["name"], 1.0)  # Holm: alpha / (m - rank)
            violations.append(_drift_violation(entry, level))
    return drift_rows


def _value_checks(name: str, profile: NumericProfile | StringProfile, settings: Settings) -> list[dict[str, Any]]:
    """The checks of one feature's values: type, completeness, domain (Model Monitor's thresholds: the share
    of values that must pass, 1.0 in the files its baseline jobs write)."""
    found = []
    limit = settings.features.get(name, {})
    expected_type = limit.get("inferred_type")
    if isinstance(profile, NumericProfile):
        present = profile.count + profile.mismatched
        wrong = profile.mismatched + (profile.non_integer if expected_type == "Integral" else 0)
    else:
        present, wrong = profile.count, 0
    total = present + profile.missing
    required = float(settings.config.get("datatype_check_threshold", 1.0))
    if present and 1 - wrong / present < required - 1e-12:
        found.append(report.data_type(name, str(expected_type), required, 1 - wrong / present, wrong, present))
    expected = limit.get("completeness")
    if expected is not None and total:
        observed = present / total
        sigmas = float(settings.config.get("shipyard_completeness_slack_sigmas", 0.0))
        slack = sigmas * math.sqrt(max(expected * (1 - expected), 0.0) / total)
        if observed < expected - slack - 1e-12:
            found.append(report.completeness(name, float(expected), observed, profile.missing, total))
    domain = (limit.get("string_constraints") or {}).get("domains")
    if domain and isinstance(profile, StringProfile) and profile.count:
        allowed = set(domain)
        outside = {v: c for v, c in profile.counts.items() if v not in allowed}
        inside = 1 - sum(outside.values()) / profile.count
        required = float(settings.config.get("domain_content_threshold", 1.0))
        if inside < required - 1e-12:
            shown = sorted(outside, key=lambda v: -outside[v])[:5]
            found.append(report.categorical_values(name, required, inside, len(domain), shown))
    return found


def _drift_entry(
    name: str,
    profile: NumericProfile | StringProfile,
    ref: NumericReference | CategoricalReference,
    settings: Settings,
    thresholds: Mapping[str, float],
    methods: Mapping[str, str],
    small_rows: int,
) -> dict[str, Any]:
    """One feature's drift: the method and threshold it is judged by, its scores and its histograms."""
    numeric = isinstance(ref, NumericReference)
    n = profile.count
    method = _method(name, numeric, n, settings, methods, small_rows)
    threshold = _threshold(name, numeric, method, settings, thresholds)
    scores, histogram = _scores(ref, profile)
    evaluated = settings.compared(name)
    if method in TEST_METHODS:
        score = scores.get(f"{method}_pvalue")
        drifted = False  # decided after the Holm correction across features
    else:
        score = scores.get(method)
        drifted = evaluated and score is not None and score > threshold
    return {
        "name": name,
        "inferred_type": settings.features.get(name, {}).get("inferred_type", "Fractional" if numeric else "String"),
        "method": method,
        "threshold": threshold,
        "score": score,
        "drifted": bool(drifted),
        "evaluated": evaluated,
        "rows": n,
        "baseline_rows": ref.count if isinstance(ref, NumericReference) else int(ref.total),
        "baseline_categories": 0 if isinstance(ref, NumericReference) else len(ref.counts),
        "scores": scores,
        "histogram": histogram,
    }


def _method(
    name: str, numeric: bool, rows: int, settings: Settings, methods: Mapping[str, str], small_rows: int
) -> str:
    """The first method that applies of: the command line's for the feature, the feature's override, the
    command line's default, the file's default (Model Monitor's own method names, Robust or Simple, are not
    Shipyard's: they are passed over). ``auto`` picks by sample size."""
    allowed = NUMERIC_METHODS if numeric else CATEGORICAL_METHODS
    candidates = (
        methods.get(name),
        settings.override(name, "comparison_method"),
        methods.get("*"),
        settings.config["shipyard_numerical_method" if numeric else "shipyard_categorical_method"],
    )
    method = next((m for m in candidates if m in allowed), "auto")
    if method != "auto":
        return str(method)
    if numeric:
        return "ks" if rows <= small_rows else "wasserstein"
    return "chi_squared" if rows <= small_rows else "jensen_shannon"


def _threshold(name: str, numeric: bool, method: str, settings: Settings, thresholds: Mapping[str, float]) -> float:
    """The feature's threshold (the command line's, the override's, the command line's default), else the
    file's default for the kind of method."""
    config = settings.config
    threshold = thresholds.get(name, settings.override(name, "comparison_threshold"))
    if threshold is None:
        threshold = thresholds.get("*")
    if threshold is None:
        if method in TEST_METHODS:
            threshold = config["shipyard_test_alpha"]
        elif method == "psi":
            threshold = config["shipyard_psi_threshold"]
        elif numeric:
            threshold = config["comparison_threshold"]
        else:
            threshold = config["categorical_comparison_threshold"]
    return float(threshold)


def _scores(
    ref: NumericReference | CategoricalReference, profile: NumericProfile | StringProfile
) -> tuple[dict[str, float], dict[str, Any]]:
    """Every score of the feature against its reference, and the histograms a report draws."""
    if isinstance(ref, NumericReference) and isinstance(profile, NumericProfile):
        scores = numeric_scores(ref, profile.le, profile.count, profile.below, profile.above, profile.small_sample())
        return scores, _numeric_histogram(ref, profile)
    if isinstance(ref, CategoricalReference) and isinstance(profile, StringProfile):
        return categorical_scores(ref, profile.counts), _categorical_histogram(ref, profile.counts)
    return {}, {}


def _drift_violation(entry: dict[str, Any], level: float) -> dict[str, Any]:
    """Model Monitor's sentence: ``Baseline drift distance: D exceeds threshold: T``. For a distance method D is
    the score and T its threshold; for a test, D is the test statistic and T the statistic's critical value
    at the level the feature was tested at (alpha, Holm-corrected), so the sentence reads the same way and
    the p-value goes alongside."""
    method, scores = entry["method"], entry["scores"]
    if method not in TEST_METHODS:
        return report.drift(entry["name"], entry["score"], entry["threshold"], method=method)
    statistic = float(scores[method])
    return report.drift(
        entry["name"],
        statistic,
        critical_value(
            method,
            level,
            rows=entry["rows"],
            baseline_rows=entry["baseline_rows"],
            categories=entry["baseline_categories"],
        ),
        method=method,
        p_value=entry["score"],
        p_adjusted=entry.get("p_adjusted"),
        alpha=entry["threshold"],
        level=level,
    )


def _numeric_histogram(ref: NumericReference, profile: NumericProfile) -> dict[str, Any]:
    if not profile.count:
        return {}
    edges = ref.edges
    low = np.searchsorted(ref.cdf, 0.005)
    high = min(len(edges) - 1, int(np.searchsorted(ref.cdf, 0.995)))
    targets = np.linspace(edges[low], edges[high], _DISPLAY_BINS + 1)
    picks = np.unique(np.clip(np.searchsorted(edges, targets), low, high))
    if len(picks) < 2:  # a constant baseline feature: one bar, its value ± 0.5
        value = float(edges[0])
        return {
            "edges": [value - 0.5, value + 0.5],
            "baseline": [1.0],
            "current": [float(profile.le[0]) / profile.count],
        }
    base = np.concatenate([[0.0], ref.cdf[picks[1:-1]], [1.0]])
    cur = np.concatenate([[0.0], profile.le[picks[1:-1]] / profile.count, [1.0]])
    return {
        "edges": edges[picks].tolist(),
        "baseline": np.diff(base).tolist(),
        "current": np.diff(cur).tolist(),
    }


def _categorical_histogram(ref: CategoricalReference, current: dict[str, int]) -> dict[str, Any]:
    n = sum(current.values()) or 1
    top = sorted(ref.counts, key=lambda v: -ref.counts[v])[:15]
    new = sorted((v for v in current if v not in ref.counts), key=lambda v: -current[v])[:5]
    values = top + new
    return {
        "values": values,
        "baseline": [ref.counts.get(v, 0.0) / (ref.total or 1) for v in values],
        "current": [current.get(v, 0) / n for v in values],
    }


def _windows(
    profiler: Profiler,
    refs: dict[str, NumericReference | CategoricalReference],
    entries: list[dict[str, Any]],
    window_s: float | None,
) -> list[dict[str, Any]]:
    if not window_s or not profiler.window_rows:
        return []
    methods = {e["name"]: e["method"] for e in entries}
    out = []
    for slot in sorted(profiler.window_rows):
        if slot < 0:
            continue
        scores: dict[str, float | None] = {}
        for name, method in methods.items():
            profile, ref = profiler.profiles[name], refs[name]
            # a window's score is the feature's effect size (tests are for the whole period)
            if isinstance(profile, NumericProfile) and isinstance(ref, NumericReference):
                slot_data = profile.windows.get(slot)
                if slot_data is None:
                    continue
                count, le, below, above = slot_data
                key = method if method not in TEST_METHODS else "wasserstein"
                scores[name] = numeric_scores(ref, le, count, below, above).get(key)
            elif isinstance(profile, StringProfile) and isinstance(ref, CategoricalReference):
                counts = profile.windows.get(slot)
                if counts:
                    key = method if method not in TEST_METHODS else "jensen_shannon"
                    scores[name] = categorical_scores(ref, counts).get(key)
        out.append({"start": iso_time(slot * window_s), "rows": profiler.window_rows[slot], "scores": scores})
    return out
