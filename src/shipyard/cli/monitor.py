"""``shipyard monitor baseline|check|quality|bias|report``: monitoring after launch (see docs/monitor.md).

Exit codes: 0 fine, 2 unusable input (MonitorError), 3 violations found — so a scheduler or CI can alert.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.errors import MonitorError

EXIT_VIOLATIONS = 3

out = Console()
err = Console(stderr=True)

monitor_app = typer.Typer(
    name="monitor",
    help="Baselines, drift and data-quality checks, model quality and reports on captured traffic.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")


def _pairs(values: list[str], option: str, cast: Any = float) -> dict[str, Any]:
    """``NAME=VALUE`` options (a bare ``VALUE`` sets the default, under the name ``*``)."""
    parsed: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.rpartition("=")
        try:
            parsed[name if sep else "*"] = cast(value)
        except ValueError:
            raise MonitorError(f"{option} {item!r}: expected NAME=VALUE (or VALUE for every feature)") from None
    return parsed


def _problems(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/] {line}", highlight=False)


# the options of `baseline --bias` / `--explain` (module-level, so the command's signature stays short)
BiasFlag = Annotated[bool, typer.Option("--bias", help="Also a bias baseline: OUT/bias/ (post-training metrics).")]
BaselineLabel = Annotated[str | None, typer.Option("--label", help="--bias: the column of true labels.")]
BaselineFacets = Annotated[
    list[str], typer.Option("--facet", help="--bias: gender, gender=female[,other] or age>40 (repeatable).")
]
BaselinePredicted = Annotated[
    str | None, typer.Option("--predicted", help="--bias: a column of the model's predictions (else --bundle).")
]
BaselinePositive = Annotated[
    list[str], typer.Option("--positive", help="--bias: the positive label value(s), or '>T' (default 1).")
]
BaselineGroupBy = Annotated[str | None, typer.Option("--group-by", help="--bias: the group column of CDDL/CDDPL.")]
ExplainFlag = Annotated[
    bool, typer.Option("--explain", help="Also an explainability baseline (needs --bundle): OUT/explain/.")
]
ModelBundle = Annotated[
    Path | None, typer.Option("--bundle", help="The model: predicts for --bias, is explained for --explain.")
]
ShapBaseline = Annotated[
    str, typer.Option("--shap-baseline", help="--explain: K (K-means rows of the data) or a CSV of rows.")
]
Samples = Annotated[int | None, typer.Option("--samples", help="--explain: coalitions per row (Kernel SHAP).")]
Agg = Annotated[str, typer.Option("--agg", help="--explain: mean_abs, median or mean_sq.")]
Logit = Annotated[bool, typer.Option("--logit", help="--explain: SHAP values in log-odds.")]
Seed = Annotated[int, typer.Option("--seed", help="--explain: the seed of the sampling (and of K-means).")]
LabelHeaders = Annotated[
    str | None, typer.Option("--label-headers", help="--explain: names of the model's outputs, a,b,…")
]
ExplainRows = Annotated[
    int, typer.Option("--explain-rows", help="--explain: SHAP values of at most this many rows (a seeded sample).")
]


@monitor_app.command("baseline")
def baseline(
    data: Path = typer.Argument(..., help="Training data: .csv, .parquet, .jsonl (or captured traffic)."),
    out_dir: Path = typer.Option(
        Path("baseline"), "--out", "-o", help="Directory for statistics.json and constraints.json."
    ),
    schema: Path | None = typer.Option(None, "--schema", help="A bundle: take its input features (names, order)."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="A column that is not a model input (the label)."),
    header: bool = typer.Option(True, "--header/--no-header", help="Whether a CSV's first line names the columns."),
    bias: BiasFlag = False,
    label: BaselineLabel = None,
    facet: BaselineFacets = [],  # noqa: B006 (typer reads the default; it is never mutated)
    predicted: BaselinePredicted = None,
    positive: BaselinePositive = [],  # noqa: B006
    group_by: BaselineGroupBy = None,
    probability_threshold: ProbabilityThreshold = 0.5,
    explain: ExplainFlag = False,
    bundle: ModelBundle = None,
    shap_baseline: ShapBaseline = "1",
    samples: Samples = None,
    agg: Agg = "mean_abs",
    logit: Logit = False,
    seed: Seed = 0,
    label_headers: LabelHeaders = None,
    explain_rows: ExplainRows = 500,
) -> None:
    """Profile training data: statistics.json and constraints.json in Model Monitor's format (with --bias and
    --explain also the constraints of bias drift and attribution drift, in Clarify's)."""
    from shipyard.monitor.baseline import BiasOptions, ExplainOptions, make_baseline

    bias_options = explain_options = None
    if bias:
        if not label or not facet:
            raise MonitorError("--bias needs --label and at least one --facet")
        bias_options = BiasOptions(
            label, facet, tuple(positive) or ("1",), predicted, bundle, group_by, probability_threshold
        )
    if explain:
        if bundle is None:
            raise MonitorError("--explain needs --bundle (the model to explain)")
        k = Path(shap_baseline) if not shap_baseline.isdigit() else int(shap_baseline)
        headers = [h.strip() for h in label_headers.split(",")] if label_headers else None
        explain_options = ExplainOptions(bundle, k, samples, agg, logit, seed, headers, explain_rows)
    with _options():
        result = make_baseline(
            data, out_dir, schema=schema, exclude=exclude, header=header, bias=bias_options, explain=explain_options
        )
    _problems(result.problems.summary())
    table = Table(title=f"baseline of {result.rows:,} rows → {out_dir}/")
    for column in ("feature", "type", "complete", "mean / top value", "std / distinct"):
        table.add_column(column)
    for feature in result.features[:40]:
        kind = feature["inferred_type"]
        stats = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = stats.get("common", {})
        total = common.get("num_present", 0) + common.get("num_missing", 0)
        complete = f"{common.get('num_present', 0) / total:.1%}" if total else "-"
        if "numerical_statistics" in feature:
            centre, spread = f"{stats.get('mean') or 0:.4g}", f"{stats.get('std_dev') or 0:.4g}"
        else:
            buckets = stats.get("distribution", {}).get("categorical", {}).get("buckets", [])
            centre = str(buckets[0]["value"])[:20] if buckets else "-"
            spread = str(int(stats.get("distinct_count", 0)))
        table.add_row(feature["name"], kind, complete, centre, spread)
    if len(result.features) > 40:
        table.caption = f"… {len(result.features) - 40} more features"
    out.print(table)
    if result.bias is not None:
        out.print(_bias_table(result.bias, None, f"bias baseline → {out_dir}/bias/"))
    if result.explain is not None:
        out.print(_shap_table(result.explain, None, f"SHAP baseline → {out_dir}/explain/"))


# the options of `check` and `quality` (module-level, so the commands' signatures stay short)
Source = Annotated[Path, typer.Argument(help="Captured traffic (a capture directory or .jsonl) or a data file.")]
CaptureSource = Annotated[Path, typer.Argument(help="Captured traffic (a capture directory or .jsonl).")]
BaselineDir = Annotated[Path, typer.Option("--baseline", "-b", help="Directory made by `shipyard monitor baseline`.")]
ResultsDir = Annotated[Path, typer.Option("--out", "-o", help="Directory for the results.")]
Since = Annotated[str | None, typer.Option("--since", help="Only traffic since: 24h, 30m, 7d or an ISO time.")]
CheckUntil = Annotated[
    str | None, typer.Option("--until", help="Only traffic before: a duration back from now or an ISO time.")
]
QualityUntil = Annotated[str | None, typer.Option("--until", help="Only traffic before this time.")]
DriftWindow = Annotated[str, typer.Option("--window", help="Width of the time windows drift is also scored on.")]
MetricsWindow = Annotated[str, typer.Option("--window", help="Width of the time windows metrics are computed on.")]
DriftThresholds = Annotated[
    list[str], typer.Option("--threshold", "-t", help="FEATURE=VALUE (or VALUE for all): drift threshold.")
]
Methods = Annotated[
    list[str],
    typer.Option(
        "--method",
        "-m",
        help="FEATURE=METHOD (or METHOD for all): wasserstein, ks, psi, jensen_shannon, chi_squared, linf.",
    ),
]
Header = Annotated[bool, typer.Option("--header/--no-header", help="Whether a CSV's first line names the columns.")]
GroundTruth = Annotated[Path, typer.Option("--ground-truth", "-g", help="Labels as JSON Lines, keyed by inference id.")]
Problem = Annotated[
    str | None, typer.Option("--problem", help="classification or regression.", show_default="inferred")
]
MetricThresholds = Annotated[
    list[str],
    typer.Option("--threshold", "-t", help="METRIC=VALUE: accuracy=0.9, rmse=3.5 (min for scores, max for errors)."),
]
CheckGroundTruth = Annotated[
    Path | None,
    typer.Option("--ground-truth", "-g", help="Labels (JSON Lines, by inference id): bias drift, when baselined."),
]
CheckBundle = Annotated[
    Path | None,
    typer.Option("--bundle", help="The model: attribution drift, when baselined (default: the baseline's bundle)."),
]
BiasTolerance = Annotated[
    float, typer.Option("--bias-tolerance", help="Bias drift: how much farther from the ideal than the baseline.")
]
BiasMetrics = Annotated[
    list[str],
    typer.Option(
        "--bias-metric",
        help="Bias drift: also judge this metric (repeatable; by default AD, CDDPL, DAR, DI, DPPL, DRR, RD).",
    ),
]
AttributionThreshold = Annotated[
    float, typer.Option("--attribution-threshold", help="Attribution drift: nDCG below it is a violation.")
]
CheckExplainRows = Annotated[
    int | None,
    typer.Option("--explain-rows", help="Attribution drift: explain at most this many rows.", show_default="500"),
]
ProbabilityThreshold = Annotated[
    float, typer.Option("--probability-threshold", help="Binary scores at or above it are class 1.")
]

# the library's arguments and the options that set them, for its error messages (see `_options`)
_OPTION_OF: dict[str, str] = {
    "since": "--since",
    "until": "--until",
    "window": "--window",
    "ground_truth": "--ground-truth",
    "problem": "--problem",
    "thresholds": "--threshold",
    "methods": "--method",
    "schema": "--schema",
    "label": "--label",
    "facets": "--facet",
    "positive": "--positive",
    "predicted": "--predicted",
    "bundle": "--bundle",
    "group_by": "--group-by",
    "bias_metrics": "--bias-metric",
}
_OPTION_OF.update(
    {"label": "--label", "facets": "--facet", "predicted": "--predicted", "agg": "--agg", "samples": "--samples"}
)


@contextmanager
def _options() -> Iterator[None]:
    """Word the library's argument errors with the option's name: ``since 'x': …`` becomes ``--since 'x': …``;
    a results directory that is not there says which command makes one."""
    try:
        yield
    except MonitorError as exc:
        from shipyard.monitor.problems import ArgumentError

        if not isinstance(exc, ArgumentError):
            raise
        if exc.argument == "results":
            hint = f"run `shipyard monitor check … --out {exc.value}` first"
            raise MonitorError(f"{exc.value}: {exc.problem} ({hint})") from exc
        if exc.argument not in _OPTION_OF:
            raise
        raise MonitorError(ArgumentError.wording(_OPTION_OF[exc.argument], exc.value, exc.problem)) from exc


@monitor_app.command("check")
def check(
    source: Source,
    baseline_dir: BaselineDir,
    out_dir: ResultsDir = Path("monitoring"),
    since: Since = None,
    until: CheckUntil = None,
    window: DriftWindow = "1h",
    threshold: DriftThresholds = [],  # noqa: B006 (typer reads the default; it is never mutated)
    method: Methods = [],  # noqa: B006
    header: Header = True,
    ground_truth: CheckGroundTruth = None,
    bundle: CheckBundle = None,
    bias_tolerance: BiasTolerance = 0.0,
    bias_metric: BiasMetrics = [],  # noqa: B006
    attribution_threshold: AttributionThreshold = 0.9,
    explain_rows: CheckExplainRows = None,
    output: Output = OUTPUT_OPTION,
) -> None:
    """Compare current data with the baseline: constraint_violations.json, drift.json; with a bias or an
    explain baseline also bias drift (needs --ground-truth) and attribution drift; exit 3 on violations."""
    from shipyard.monitor.check import run_check

    with _options():
        result = run_check(
            source,
            baseline_dir,
            out_dir,
            since=since,
            until=until,
            window=window or None,
            thresholds=_pairs(threshold, "--threshold"),
            methods=_pairs(method, "--method", str),
            header=header,
            ground_truth=ground_truth,
            bundle=bundle,
            bias_tolerance=bias_tolerance,
            bias_metrics=bias_metric,
            attribution_threshold=attribution_threshold,
            explain_rows=explain_rows,
        )
    _problems(result.problems.summary())
    if output is Output.json:
        print_json("monitor-check", _check_document(result, baseline_dir))
        if result.all_violations:
            raise typer.Exit(EXIT_VIOLATIONS)
        return
    out.print(_drift_table(result, baseline_dir, out_dir))
    found = _print_violations(result.violations, "feature_name", out_dir / "constraint_violations.json")
    for part, key in ((result.bias, "metric_name"), (result.explain, "label")):
        if part is None:
            continue
        if part.skipped is not None:
            out.print(f"[yellow]{part.kind} drift skipped:[/] {part.skipped}", highlight=False)
            continue
        _problems(part.problems.summary())
        if part.kind == "bias" and part.document is not None:
            title = f"bias drift: {part.rows:,} labelled rows"
            out.print(_bias_table(part.document, part.baseline, title, part.violations))
        elif part.document is not None:
            out.print(_shap_table(part.document, part.baseline, f"attribution drift: {part.rows:,} rows explained"))
            scores = ", ".join(f"{label} {score:.4f}" for label, score in part.scores.items())
            out.print(f"nDCG against the baseline's ranking: {scores}", highlight=False)
        assert part.out is not None
        found += _print_violations(part.violations, key, part.out / "constraint_violations.json")
    if found:
        raise typer.Exit(EXIT_VIOLATIONS)


def _bias_table(
    document: dict[str, Any], baseline: dict[str, Any] | None, title: str, violations: Sequence[dict[str, Any]] = ()
) -> Table:
    """A bias analysis' metrics per facet value (next to the baseline's value, and marked where a violation)."""
    from shipyard.monitor.clarify_drift import bias_metrics

    reference = {key[:4]: key[4] for key in bias_metrics(baseline or {})}
    flagged = {(v.get("facet"), v.get("facet_value"), v.get("metric_name")) for v in violations}
    table = Table(title=title)
    for column in (
        "facet",
        "value",
        "metric",
        "current" if baseline else "value",
        *(("baseline",) if baseline else ()),
        "",
    ):
        table.add_column(column)
    for stage, facet, value_or_threshold, name, value in bias_metrics(document):
        cells = [facet, value_or_threshold, name, "-" if value is None else f"{value:.4g}"]
        if baseline is not None:
            base = reference.get((stage, facet, value_or_threshold, name))
            cells.append("-" if base is None else f"{base:.4g}")
        cells.append("[red]violation[/]" if (facet, value_or_threshold, name) in flagged else "")
        table.add_row(*cells)
    return table


def _shap_table(document: dict[str, Any], baseline: dict[str, Any] | None, title: str) -> Table:
    """Global SHAP values per label, most important first (next to the baseline's)."""
    from shipyard.monitor.clarify_drift import global_shap

    current, reference = global_shap(document), global_shap(baseline or {})
    table = Table(title=title)
    for column in ("label", "feature", "current" if baseline else "global SHAP", *(("baseline",) if baseline else ())):
        table.add_column(column)
    for label, values in current.items():
        for feature in sorted(values, key=lambda f: -abs(values[f]))[:10]:
            cells = [label, feature, f"{values[feature]:.4g}"]
            if baseline is not None:
                base = reference.get(label, {}).get(feature)
                cells.append("-" if base is None else f"{base:.4g}")
            table.add_row(*cells)
    return table


def _drift_table(result: Any, baseline_dir: Path, out_dir: Path) -> Table:
    """The drifted features (or the five nearest to drifting), most drifted first."""
    from shipyard.monitor.report import ratio

    features = sorted(result.drift["features"], key=ratio, reverse=True)
    table = Table(title=f"{result.rows:,} rows checked against {baseline_dir}/")
    for column in ("feature", "method", "score", "threshold", ""):
        table.add_column(column)
    shown = [f for f in features if f["drifted"]] or features[:5]
    for feature in shown[:25]:
        score = feature["score"]
        mark = "[red]DRIFT[/]" if feature["drifted"] else "[green]ok[/]"
        table.add_row(
            feature["name"],
            feature["method"],
            "-" if score is None else f"{score:.4g}",
            f"{feature['threshold']:g}",
            mark,
        )
    if len(shown) > 25:
        table.caption = f"… {len(shown) - 25} more drifted features (see {out_dir}/drift.json)"
    return table


def _check_document(result: Any, baseline_dir: Path) -> dict[str, Any]:
    """``monitor check --output json`` (docs/schemas/monitor-check.v1.json): what the files written hold,
    without the histograms (drift.json keeps those)."""
    drift = result.drift
    keys = ("name", "inferred_type", "method", "threshold", "score", "drifted", "rows", "p_adjusted")
    return {
        "source": drift["source"],
        "baseline": str(baseline_dir),
        "out": str(result.out),
        "rows": result.rows,
        "since": drift["since"],
        "until": drift["until"],
        "window_seconds": drift["window_seconds"],
        "passed": not result.all_violations,
        "drifted": [f["name"] for f in drift["features"] if f["drifted"]],
        "features": [{key: feature.get(key) for key in keys} for feature in drift["features"]],
        "violations": result.violations,
        "problems": drift["problems"],
        "files": {name: str(result.out / f"{name}.json") for name in ("constraint_violations", "statistics", "drift")},
        "bias": None if result.bias is None else result.bias.summary(),
        "explain": None if result.explain is None else result.explain.summary(),
    }


def _violations(violations: list[dict[str, Any]], key: str, path: Path) -> None:
    if _print_violations(violations, key, path):
        raise typer.Exit(EXIT_VIOLATIONS)


def _print_violations(violations: list[dict[str, Any]], key: str, path: Path) -> int:
    """Print the violations (the first 20) and where they are; returns how many there are."""
    if not violations:
        out.print(f"[green]no violations[/] ({path})")
        return 0
    for violation in violations[:20]:
        out.print(
            f"[red]{violation['constraint_check_type']}[/] {violation.get(key, '')}: {violation['description']}",
            highlight=False,
        )
    if len(violations) > 20:
        out.print(f"… {len(violations) - 20} more")
    out.print(f"[red]{len(violations)} violations[/] ({path})")
    return len(violations)


@monitor_app.command("quality")
def quality(
    source: CaptureSource,
    ground_truth: GroundTruth,
    out_dir: ResultsDir = Path("monitoring"),
    since: Since = None,
    until: QualityUntil = None,
    window: MetricsWindow = "1h",
    problem: Problem = None,
    threshold: MetricThresholds = [],  # noqa: B006 (typer reads the default; it is never mutated)
    probability_threshold: ProbabilityThreshold = 0.5,
) -> None:
    """Join captured predictions with ground truth; metrics overall and per window; exit 3 on violations."""
    from shipyard.monitor.quality import run_quality

    thresholds = {k: v for k, v in _pairs(threshold, "--threshold").items() if k != "*"}
    with _options():
        result = run_quality(
            source,
            ground_truth,
            out_dir,
            since=since,
            until=until,
            window=window or None,
            problem=problem,
            thresholds=thresholds,
            probability_threshold=probability_threshold,
        )
    _problems(result.problems.summary())
    join = result.document["join"]
    table = Table(
        title=f"{result.document['problem_type']}: {join['matched_rows']:,} labelled rows "
        f"({join['matched_records']:,} of {join['captured_records']:,} captured records)"
    )
    table.add_column("metric")
    table.add_column("overall", justify="right")
    windows = result.document["windows"][-4:]
    for window_entry in windows:
        table.add_column(window_entry["start"][5:16].replace("T", " "), justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}", *(f"{w['metrics'].get(name, float('nan')):.4f}" for w in windows))
    out.print(table)
    _violations(result.violations, "metric_name", out_dir / "quality_violations.json")


# the options of `bias`
BiasData = Annotated[Path, typer.Argument(help="A data set with labels: .csv, .parquet or .jsonl.")]
Label = Annotated[str, typer.Option("--label", "-l", help="The label column.")]
Facets = Annotated[
    list[str],
    typer.Option(
        "--facet", "-f", help="A sensitive column: gender (each value vs the rest), gender=female[,other], age>40."
    ),
]
Positive = Annotated[
    list[str], typer.Option("--positive", help="A positive label value (repeatable), or '>T' for label > T.")
]
Predicted = Annotated[str | None, typer.Option("--predicted", help="A column of predicted labels or scores.")]
BiasBundle = Annotated[Path | None, typer.Option("--bundle", help="A bundle: predict the rows with it, in process.")]
GroupBy = Annotated[str | None, typer.Option("--group-by", help="The group variable of CDDL and CDDPL.")]
BiasThresholds = Annotated[
    list[str], typer.Option("--threshold", "-t", help="METRIC=LOW:HIGH, the band a metric must stay in (DI=0.8:1.25).")
]
ScoreThreshold = Annotated[
    float, typer.Option("--probability-threshold", help="Scores at or above it are predicted positive.")
]


def _bands(values: list[str]) -> dict[str, tuple[float, float]]:
    bands = {}
    for item in values:
        name, _, band = item.partition("=")
        low, sep, high = band.partition(":")
        try:
            bands[name.strip()] = (float(low) if low else float("-inf"), float(high) if high else float("inf"))
            if not (name.strip() and sep):
                raise ValueError
        except ValueError:
            raise MonitorError(
                f"--threshold {item!r}: expected METRIC=LOW:HIGH, e.g. DI=0.8:1.25 or DPPL=-0.1:0.1"
            ) from None
    return bands


@monitor_app.command("bias")
def bias(
    data: BiasData,
    label: Label,
    facet: Facets,
    out_dir: ResultsDir = Path("bias"),
    predicted: Predicted = None,
    bundle: BiasBundle = None,
    positive: Positive = ["1"],  # noqa: B006 (typer reads the default; it is never mutated)
    group_by: GroupBy = None,
    threshold: BiasThresholds = [],  # noqa: B006
    probability_threshold: ScoreThreshold = 0.5,
    output: Output = OUTPUT_OPTION,
) -> None:
    """Clarify's bias metrics (pre-training; post-training with --predicted or --bundle); exit 3 on violations."""
    from shipyard.monitor.bias import run_bias

    with _options():
        result = run_bias(
            data,
            out_dir,
            label=label,
            facets=facet,
            positive=positive,
            predicted=predicted,
            bundle=bundle,
            group_by=group_by,
            probability_threshold=probability_threshold,
            thresholds=_bands(threshold),
        )
    _problems(result.problems.summary())
    if output is Output.json:
        print_json("monitor-bias", _bias_document(result, data))
        if result.violations:
            raise typer.Exit(EXIT_VIOLATIONS)
        return
    for table in _bias_tables(result):
        out.print(table)
    if result.report is not None:
        out.print(f"report: {result.report}", highlight=False)
    shown = [{**v, "where": _bias_where(v, result.thresholds)} for v in result.violations]
    _violations(shown, "where", out_dir / "bias_violations.json")


def _bias_where(violation: dict[str, Any], bands: dict[str, tuple[float, float]]) -> str:
    """``gender=female DI (band [0.8, 1.25])``: the group, the metric and the band it left."""
    low, high = bands.get(violation["metric_name"], (float("-inf"), float("inf")))
    return f"{violation['facet']}={violation['facet_value']} {violation['metric_name']} (band [{low:g}, {high:g}])"


_WIDE_GROUPS = 3  # at most this many facet values side by side (a column each); more: a row per value and metric


def _short(name: str) -> str:
    """A metric's description without its "(NAME)" (Clarify's descriptions end with it)."""
    from shipyard.monitor.clarify import DESCRIPTIONS

    text = DESCRIPTIONS.get(name, name)
    return text.removesuffix(f" ({name})")


def _bias_tables(result: Any) -> list[Table]:
    """A table per facet and stage, a row per metric: its value for each facet value (a column each when there
    are few; else a row per facet value and metric), violations in red; readable at 80 columns."""
    from shipyard.monitor.clarify import metric_value

    flagged = {(v["facet"], v["facet_value"], v["metric_name"]) for v in result.violations}

    def cell(facet: str, group: str, metric: dict[str, Any]) -> str:
        value = metric_value(metric)
        text = "error" if value is None else f"{value:.4g}"
        return f"[red]{text}[/]" if (facet, group, metric["name"]) in flagged else text

    tables = []
    for section, stage in (
        ("pre_training_bias_metrics", "pre-training"),
        ("post_training_bias_metrics", "post-training"),
    ):
        for facet, entries in ((result.document.get(section) or {}).get("facets") or {}).items():
            table = Table(title=f"{facet}: {stage} bias ({result.rows:,} rows)")
            groups = [str(entry["value_or_threshold"]) for entry in entries]
            sizes = [f"{result.group_sizes.get((facet, g), 0):,} rows" for g in groups]
            if len(entries) <= _WIDE_GROUPS:
                table.add_column("metric", no_wrap=True)
                table.add_column("description", overflow="fold")
                for group, size in zip(groups, sizes, strict=True):
                    table.add_column(f"{facet}={group}\n({size})", justify="right", no_wrap=True, overflow="fold")
                names = [m["name"] for m in entries[0]["metrics"]] if entries else []
                by_name = [{m["name"]: m for m in entry["metrics"]} for entry in entries]
                for name in names:
                    values = [cell(facet, g, found[name]) if name in found else "-" for g, found in
                              zip(groups, by_name, strict=True)]  # fmt: skip
                    table.add_row(name, _short(name), *values)
            else:
                for column, justify in (("value_or_threshold", "left"), ("metric", "left"), ("value", "right")):
                    table.add_column(column, justify=justify, no_wrap=column != "value_or_threshold")  # type: ignore[arg-type]
                table.add_column("description", overflow="fold")
                for group, size, entry in zip(groups, sizes, entries, strict=True):
                    for i, metric in enumerate(entry["metrics"]):
                        label = f"{group} ({size})" if i == 0 else ""
                        table.add_row(label, metric["name"], cell(facet, group, metric), _short(metric["name"]))
                    table.add_section()
            tables.append(table)
    return tables


def _bias_document(result: Any, data: Path) -> dict[str, Any]:
    """``monitor bias --output json`` (docs/schemas/monitor-bias.v1.json)."""
    from shipyard.monitor.clarify import facet_metrics

    facets = []
    for section, stage in (
        ("pre_training_bias_metrics", "pre_training"),
        ("post_training_bias_metrics", "post_training"),
    ):
        for facet, group, metric in facet_metrics(result.document, section):
            facets.append(
                {
                    "stage": stage,
                    "facet": facet,
                    "value_or_threshold": group,
                    "rows": result.group_sizes.get((facet, group), 0),
                    "metric": metric["name"],
                    "value": metric["value"],
                    "error": metric.get("error"),
                }
            )
    pre = result.document.get("pre_training_bias_metrics") or {}
    return {
        "data": str(data),
        "out": str(result.out),
        "rows": result.rows,
        "label": pre.get("label"),
        "label_value_or_threshold": pre.get("label_value_or_threshold"),
        "post_training": "post_training_bias_metrics" in result.document,
        "passed": not result.violations,
        "metrics": facets,
        "violations": result.violations,
        "not_significant": result.problems.counts.get("not significant", 0),
        "problems": result.problems.summary(),
        "files": {
            **{name: str(result.out / f"{name}.json") for name in ("analysis", "bias_violations")},
            **({"report": str(result.report)} if result.report is not None else {}),
        },
    }


@monitor_app.command("report")
def report(
    results: Path = typer.Argument(
        Path("monitoring"), help="A results directory (from check, quality, bias or explain)."
    ),
    html_path: Path | None = typer.Option(None, "--out", "-o", help="HTML file.", show_default="RESULTS/report.html"),
) -> None:
    """Write one self-contained HTML report (with PNGs) and print a one-screen summary."""
    from shipyard.monitor.report import make_report, ratio

    with _options():
        result = make_report(results, html_path)
    if result.drift is not None:
        drift = result.drift
        features = sorted(drift["features"], key=ratio, reverse=True)
        drifted = [f for f in features if f["drifted"]]
        table = Table(title=f"drift: {len(drifted)} of {len(features)} features, {drift['rows']:,} rows")
        for column in ("feature", "method", "score", "threshold", "× threshold"):
            table.add_column(column)
        for feature in features[: max(8, min(len(drifted), 12))]:
            style = "red" if feature["drifted"] else None
            score = feature["score"]
            table.add_row(
                feature["name"], feature["method"], "-" if score is None else f"{score:.4g}",
                f"{feature['threshold']:g}", f"{ratio(feature):.2f}", style=style,
            )  # fmt: skip
        out.print(table)
    if result.quality is not None:
        metrics = (
            result.quality.get("multiclass_classification_metrics") or result.quality.get("regression_metrics") or {}
        )
        line = ", ".join(f"{k} {v['value']:.4f}" for k, v in metrics.items() if isinstance(v, dict) and "value" in v)
        out.print(f"quality ({result.quality.get('problem_type')}): {line}", highlight=False)
    total = len(result.violations) + len(result.quality_violations)
    for part in (result.bias, result.explain):
        if part is None:
            continue
        total += len(part.violations)
        if part.kind == "bias":
            title = "bias" if part.baseline is None else "bias drift"
            out.print(_bias_table(part.document, part.baseline, title, part.violations))
        else:
            out.print(_shap_table(part.document, part.baseline, "attribution drift" if part.baseline else "SHAP"))
    colour = "red" if total else "green"
    out.print(f"[{colour}]{total} violations[/]; report: {result.html_path} ({len(result.images)} images)")


@monitor_app.command("explain")
def explain(
    bundle: Path = typer.Argument(..., help="The model bundle to explain (loaded in this process)."),
    data: Path = typer.Argument(..., help="Rows to explain: .csv, .parquet or .jsonl with the model's input features."),
    baseline: str = typer.Option(
        "1", "--baseline", help="K (K-means centres of the rows; 1: the mean row) or a file of baseline rows."
    ),
    samples: int | None = typer.Option(
        None, "--samples", help="Coalitions per row (Clarify's num_samples).", show_default="2M+2048, ≤ 2^M−2"
    ),
    agg: str = typer.Option("mean_abs", "--agg", help="Global values: mean_abs, median (signed) or mean_sq."),
    logit: bool = typer.Option(False, "--logit", help="SHAP values in log-odds (Clarify's use_logit)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled coalitions and of K-means."),
    label_headers: str | None = typer.Option(
        None, "--label-headers", help="Names of the model's outputs, comma-separated.", show_default="label0, label1…"
    ),
    rows: int | None = typer.Option(None, "--rows", help="Explain only the first N rows.", show_default="all"),
    out_dir: Path = typer.Option(Path("explain"), "--out", "-o", help="Directory for analysis.json and the rest."),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Kernel SHAP of a bundle, as SageMaker Clarify computes it: analysis.json, explanations_shap/out.csv."""
    from shipyard.monitor.explain import run_explain

    chosen: int | Path = int(baseline) if baseline.strip().isdigit() else Path(baseline)
    headers = [h.strip() for h in label_headers.split(",")] if label_headers else None
    with _options(), _progress(output is Output.table) as progress:
        result = run_explain(
            bundle, data, out_dir, baseline=chosen, samples=samples, agg=agg, use_logit=logit, seed=seed,
            label_headers=headers, max_rows=rows, progress=progress,
        )  # fmt: skip
    _problems(result.problems.summary())
    if output is Output.json:
        print_json("monitor-explain", _explain_document(result, agg, logit, seed))
        return
    out.print(
        f"Kernel SHAP of {result.rows:,} rows against {len(result.baseline)} baseline rows, "
        f"up to {result.samples:,} coalitions a row",
        highlight=False,
    )
    for label, entry in result.document["explanations"]["kernel_shap"].items():
        ranked = sorted(entry["global_shap_values"].items(), key=lambda item: abs(item[1]), reverse=True)
        table = Table(title=f"{label} (expected value {entry['expected_value']:.4g})")
        table.add_column("feature")
        table.add_column(f"SHAP ({agg})", justify="right")
        for name, value in ranked[:15]:
            table.add_row(name, f"{value:.4g}")
        if len(ranked) > 15:
            table.caption = f"… {len(ranked) - 15} more features ({out_dir}/analysis.json)"
        out.print(table)
    out.print(f"wrote {', '.join(str(p) for p in result.files.values())}", highlight=False)


@contextmanager
def _progress(show: bool) -> Iterator[Any]:
    """A progress bar on stderr for long explanations (none for ``--output json`` or a quiet run)."""
    if not show:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("explaining", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


_OPTION_OF.update({"baseline": "--baseline", "samples": "--samples", "agg": "--agg", "use_logit": "--logit"})
_OPTION_OF.update({"label_headers": "--label-headers", "max_rows": "--rows"})


def _explain_document(result: Any, agg: str, logit: bool, seed: int) -> dict[str, Any]:
    """``monitor explain --output json`` (docs/schemas/monitor-explain.v1.json): analysis.json's explanations,
    the settings (as Clarify's SHAPConfig names them) and the files written."""
    return {
        "out": str(result.out),
        "rows": result.rows,
        "features": result.features,
        "labels": result.labels,
        "shap": {
            "num_samples": result.samples,
            "baseline_rows": len(result.baseline),
            "agg_method": agg,
            "use_logit": logit,
            "seed": seed,
        },
        "explanations": result.document["explanations"],
        "problems": result.problems.to_dict(),
        "files": {name: str(path) for name, path in result.files.items()},
    }
