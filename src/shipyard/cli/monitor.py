"""``shipyard monitor baseline|check|quality|report``: monitoring after launch (see docs/monitor.md).

Exit codes: 0 fine, 2 unusable input (MonitorError), 3 violations found — so a scheduler or CI can alert.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@monitor_app.command("baseline")
def baseline(
    data: Path = typer.Argument(..., help="Training data: .csv, .parquet, .jsonl (or captured traffic)."),
    out_dir: Path = typer.Option(
        Path("baseline"), "--out", "-o", help="Directory for statistics.json and constraints.json."
    ),
    schema: Path | None = typer.Option(None, "--schema", help="A bundle: take its input features (names, order)."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="A column that is not a model input (the label)."),
    header: bool = typer.Option(True, "--header/--no-header", help="Whether a CSV's first line names the columns."),
) -> None:
    """Profile training data: statistics.json and constraints.json in Model Monitor's format."""
    from shipyard.monitor.baseline import make_baseline

    with _options():
        result = make_baseline(data, out_dir, schema=schema, exclude=exclude, header=header)
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
ProbabilityThreshold = Annotated[
    float, typer.Option("--probability-threshold", help="Binary scores at or above it are class 1.")
]

# the library's arguments and the options that set them, for its error messages (see `_options`)
_OPTION_OF = {
    "since": "--since",
    "until": "--until",
    "window": "--window",
    "ground_truth": "--ground-truth",
    "problem": "--problem",
    "thresholds": "--threshold",
    "methods": "--method",
    "schema": "--schema",
}


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
    output: Output = OUTPUT_OPTION,
) -> None:
    """Compare current data with the baseline: constraint_violations.json, drift.json; exit 3 on violations."""
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
        )
    _problems(result.problems.summary())
    if output is Output.json:
        print_json("monitor-check", _check_document(result, baseline_dir))
        if result.violations:
            raise typer.Exit(EXIT_VIOLATIONS)
        return
    out.print(_drift_table(result, baseline_dir, out_dir))
    _violations(result.violations, "feature_name", out_dir / "constraint_violations.json")


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
        "passed": not result.violations,
        "drifted": [f["name"] for f in drift["features"] if f["drifted"]],
        "features": [{key: feature.get(key) for key in keys} for feature in drift["features"]],
        "violations": result.violations,
        "problems": drift["problems"],
        "files": {name: str(result.out / f"{name}.json") for name in ("constraint_violations", "statistics", "drift")},
    }


def _violations(violations: list[dict[str, Any]], key: str, path: Path) -> None:
    if not violations:
        out.print(f"[green]no violations[/] ({path})")
        return
    for violation in violations[:20]:
        out.print(
            f"[red]{violation['constraint_check_type']}[/] {violation.get(key, '')}: {violation['description']}",
            highlight=False,
        )
    if len(violations) > 20:
        out.print(f"… {len(violations) - 20} more")
    out.print(f"[red]{len(violations)} violations[/] ({path})")
    raise typer.Exit(EXIT_VIOLATIONS)


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


@monitor_app.command("report")
def report(
    results: Path = typer.Argument(Path("monitoring"), help="A results directory (from check and/or quality)."),
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
