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

When the baseline has a ``bias/`` part (``baseline --bias``) and ``ground_truth`` is given, the captured
requests, answers and labels are joined (:mod:`joined`) and their post-training bias metrics judged against
the baseline's (bias drift, ``out/bias/``); when it has an ``explain/`` part and a bundle (``bundle=``, or the
one its config names) is there, SHAP values of a seeded sample of the captured requests are judged against
the baseline's ranking (attribution drift, ``out/explain/``). A part that cannot run says why in
``result.bias.skipped`` / ``result.explain.skipped``::

    result = run_check(capture, baseline, out, ground_truth=Path("labels.jsonl"), bundle=Path("bundle/"))
    result.all_violations     # data drift, bias drift and attribution drift together
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MonitorError
from shipyard.monitor import violations as report
from shipyard.monitor.baseline import EXPLAIN_ROWS, PREDICTED
from shipyard.monitor.bias import bias_analysis
from shipyard.monitor.bias_judge import DRIFT_METRICS
from shipyard.monitor.bias_metrics import POST_TRAINING, Evidence
from shipyard.monitor.clarify import read_analysis
from shipyard.monitor.clarify_drift import (
    ATTRIBUTION_THRESHOLD,
    attribution_drift_violations,
    attribution_scores,
    bias_drift_violations,
    bias_metrics,
    read_config,
    write_violations,
)
from shipyard.monitor.columns import conform, label_array, predicted_labels, sample_rows
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
from shipyard.monitor.explain import bundle_predictor, explain_analysis
from shipyard.monitor.formats import feature_statistics, read_json, statistics_document, write_json
from shipyard.monitor.joined import join_capture
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.profile import NumericProfile, StringProfile
from shipyard.monitor.profiler import Profiler
from shipyard.monitor.quality import read_ground_truth
from shipyard.monitor.sources import Span, coalesced, is_capture, iso_time, prefetched, read_chunks

__all__ = ["CATEGORICAL_METHODS", "NUMERIC_METHODS", "CheckResult", "ClarifyCheck", "run_check"]

NUMERIC_METHODS = frozenset({"auto", "wasserstein", "ks", "psi", "jensen_shannon"})
CATEGORICAL_METHODS = frozenset({"auto", "jensen_shannon", "chi_squared", "linf", "psi"})
_NUMERIC_TYPES = ("Integral", "Fractional")
_DISPLAY_BINS = 30


@dataclass
class ClarifyCheck:
    """One Clarify part of a check (``bias`` or ``explain``): what it found, or why it was skipped."""

    kind: str
    skipped: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    document: dict[str, Any] | None = None  # the current analysis.json
    baseline: dict[str, Any] | None = None  # the baseline's analysis.json (the constraints)
    rows: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # explain: nDCG per label
    out: Path | None = None
    problems: Problems = field(default_factory=Problems)

    def summary(self) -> dict[str, Any]:
        """What ``check --output json`` says of the part."""
        names = ("analysis", "constraint_violations", "drift")
        files = {} if self.out is None else {n: str(self.out / f"{n}.json") for n in names}
        return {
            "ran": self.skipped is None,
            "skipped": self.skipped,
            "rows": self.rows,
            "passed": not self.violations,
            "violations": self.violations,
            **({"ndcg": self.scores} if self.kind == "explain" else {}),
            # bias: metrics farther from the ideal than the baseline's, but within sampling error
            **({"not_significant": self.problems.counts.get("not significant", 0)} if self.kind == "bias" else {}),
            "files": files,
        }


@dataclass
class CheckResult:
    violations: list[dict[str, Any]]
    drift: dict[str, Any]
    rows: int
    out: Path
    problems: Problems = field(default_factory=Problems)
    bias: ClarifyCheck | None = None  # None: the baseline has no bias/ part
    explain: ClarifyCheck | None = None  # None: the baseline has no explain/ part

    @property
    def drifted(self) -> list[str]:
        return [f["name"] for f in self.drift["features"] if f.get("drifted")]

    @property
    def all_violations(self) -> list[dict[str, Any]]:
        """Data drift's, bias drift's and attribution drift's violations."""
        parts = [p.violations for p in (self.bias, self.explain) if p is not None]
        return [*self.violations, *(v for part in parts for v in part)]


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
    ground_truth: Path | None = None,
    bundle: Path | None = None,
    bias_tolerance: float = 0.0,
    bias_metrics: Sequence[str] | None = None,
    attribution_threshold: float = ATTRIBUTION_THRESHOLD,
    explain_rows: int | None = None,
) -> CheckResult:
    """Check ``source`` against the baseline in ``baseline`` and write the results into ``out``.

    The steps: load the baseline → profile the current data → judge it (violations, drift) → write; then
    bias drift and attribution drift where the baseline has them (see the module's doc).
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
    result = CheckResult(violations, document, profiler.rows, out, problems)
    names = reference.names
    if (baseline / "bias").is_dir():
        result.bias = _bias_drift(
            source, baseline / "bias", out / "bias", span, ground_truth, names, bias_tolerance, bias_metrics
        )
    if (baseline / "explain").is_dir():
        limit = explain_rows
        result.explain = _attribution_drift(
            source, baseline / "explain", out / "explain", span, bundle, attribution_threshold, limit, header
        )
    return result


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


# -- bias drift and attribution drift ------------------------------------------------------------
def _bias_drift(
    source: Path,
    baseline: Path,
    out: Path,
    span: Span,
    ground_truth: Path | None,
    names: list[str],
    tolerance: float,
    metrics: Sequence[str] | None = None,
) -> ClarifyCheck:
    """Post-training bias metrics of the captured requests, answers and labels, against the baseline's."""
    part = ClarifyCheck("bias")
    if ground_truth is None:
        part.skipped = "no ground truth (--ground-truth): bias drift needs the true labels of the traffic"
        return part
    if not is_capture(source):
        part.skipped = f"{source} is not captured traffic: bias drift joins captured answers with ground truth"
        return part
    config = read_config(baseline / "analysis_config.json")
    part.baseline = read_analysis(baseline / "analysis.json")
    settings = config.get("shipyard") or {}
    label = str(config["label"])
    problems = Problems()
    labels = read_ground_truth(ground_truth, problems)
    features = [str(n) for n in settings.get("features") or names]
    joined = join_capture(source, labels, span, problems, names=features, inputs=True)
    if not joined.predicted:
        raise MonitorError(
            f"no captured prediction in {source} matches a label in {ground_truth} "
            f"({joined.captured} captured records, {len(labels)} labels; they join on inferenceId, else eventId)"
        )
    columns = joined.columns()
    predicted = str(settings.get("predicted") or PREDICTED)
    columns[label] = label_array(joined.actual)
    columns[predicted] = predicted_labels(label_array(joined.predicted))
    facets = [str(f) for f in settings.get("facets") or [f["name_or_index"] for f in config.get("facet", [])]]
    group_by = settings.get("group_by", config.get("group_variable"))
    wanted = [f.partition(">")[0].partition("=")[0].strip() for f in facets] + ([group_by] if group_by else [])
    missing = [c for c in wanted if c not in columns]
    for name, kind in (settings.get("types") or {}).items():
        if name in columns:
            columns[name] = conform(columns[name], str(kind))
    if missing:
        raise MonitorError(
            f"the captured requests have no column {', '.join(missing)} (their features: {', '.join(features[:20])}); "
            "bias drift needs the facets among the model's inputs"
        )
    evidence: dict[tuple[str, str], Evidence] = {}
    part.document = bias_analysis(
        columns,
        label=label,
        facets=facets,
        positive=[str(v) for v in settings.get("positive") or ["1"]],
        predicted=predicted,
        group_by=group_by,
        probability_threshold=float(config.get("probability_threshold", 0.5)),
        pre_training=False,
        post_training=True,
        evidence=evidence,
    )
    part.rows = len(joined.actual)
    judged = _bias_metric_names(metrics)
    record: dict[str, Any] = {}
    part.violations = bias_drift_violations(
        part.baseline,
        part.document,
        tolerance=tolerance,
        evidence=evidence,
        metrics=judged,
        problems=problems,
        record=record,
    )
    _unmatched(part.baseline, part.document, problems)
    join = {"captured_records": joined.captured, "matched_records": joined.matched_records, "matched_rows": part.rows}
    return _write_part(part, out, baseline, problems, {"tolerance": tolerance, "judged": record, "join": join})


def _bias_metric_names(extra: Sequence[str] | None) -> list[str]:
    """The metrics bias drift judges: those with a default band, and any named (``DCAcc`` is DCA)."""
    from shipyard.monitor.bias import ALIASES

    known = set(POST_TRAINING)
    chosen = list(DRIFT_METRICS)
    for name in extra or ():
        metric = ALIASES.get(name.strip(), name.strip())
        if metric not in known:
            names = ", ".join(sorted(known))
            raise ArgumentError("bias_metrics", name, f"no post-training metric of that name ({names})")
        if metric not in chosen:
            chosen.append(metric)
    return chosen


def _unmatched(baseline: dict[str, Any], current: dict[str, Any], problems: Problems) -> None:
    """Facet groups of the traffic the baseline has no metrics for (so nothing of theirs is judged)."""
    known = {key[1:3] for key in bias_metrics(baseline)}
    for group in dict.fromkeys(key[1:3] for key in bias_metrics(current)):
        if group not in known:
            facet, value = group
            problems.add("bias", f"facet {facet} = {value}: the baseline has no such group; not judged")


def _attribution_drift(
    source: Path,
    baseline: Path,
    out: Path,
    span: Span,
    bundle: Path | None,
    threshold: float,
    limit: int | None,
    header: bool,
) -> ClarifyCheck:
    """Global SHAP values of a seeded sample of the current rows, their ranking against the baseline's."""
    part = ClarifyCheck("explain")
    config = read_config(baseline / "analysis_config.json")
    settings = config.get("shipyard") or {}
    named = settings.get("bundle")
    model = bundle or (Path(named) if named else None)
    if model is None or not model.exists():
        where = f" ({named} is not there)" if named and bundle is None else ""
        part.skipped = f"no bundle (--bundle){where}: attribution drift runs the model on the traffic"
        return part
    part.baseline = read_analysis(baseline / "analysis.json")
    shap = config["methods"]["shap"]
    features = [str(n) for n in config["headers"]]
    problems = Problems()
    seed = int(shap.get("seed", 0))
    most = int(limit or settings.get("max_rows") or EXPLAIN_ROWS)
    rows, _ = sample_rows(source, features, most, seed=seed, header=header, span=span, problems=problems)
    predict, _ = bundle_predictor(model)
    label_headers = (config.get("predictor") or {}).get("label_headers")
    part.document, _ = explain_analysis(
        predict,
        rows,
        features,
        np.asarray(shap["baseline"], dtype=np.float64),
        samples=shap.get("num_samples"),
        agg=str(shap.get("agg_method", "mean_abs")),
        use_logit=bool(shap.get("use_logit", False)),
        seed=seed,
        label_headers=label_headers,
    )
    part.rows = len(rows)
    part.scores = attribution_scores(part.baseline, part.document)
    part.violations = attribution_drift_violations(part.baseline, part.document, threshold)
    return _write_part(part, out, baseline, problems, {"threshold": threshold, "ndcg": part.scores})


def _write_part(
    part: ClarifyCheck, out: Path, baseline: Path, problems: Problems, details: dict[str, Any]
) -> ClarifyCheck:
    """``analysis.json`` (Clarify's), ``constraint_violations.json`` (Model Monitor's) and ``drift.json``
    (Shipyard's: how the part was judged, with the baseline's analysis, for the report)."""
    part.out, part.problems = out, problems
    write_json(out / "analysis.json", part.document)
    write_violations(out / "constraint_violations.json", part.violations)
    drift = {"kind": part.kind, "baseline": str(baseline), "rows": part.rows, **details}
    drift |= {"problems": problems.to_dict(), "baseline_analysis": part.baseline}
    write_json(out / "drift.json", drift)
    return part
