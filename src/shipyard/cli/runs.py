"""``shipyard runs``: the training runs, listed and compared (a table, ``--output json``, a PNG of one metric).

``shipyard runs [--experiment X] [--metric NAME] [--sort METRIC] [--plot FILE.png] [--source mlflow|local]``
lists; ``shipyard runs show NAME`` (or ``shipyard runs NAME``) shows one run in full. The data comes from
``shipyard.experiments`` (MLflow when the ``track`` extra is installed, else Shipyard's run records); this module
only parses and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shipyard.cli.deploy import name_the_flag
from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.cli.tables import print_fitted
from shipyard.settings import Settings

if TYPE_CHECKING:
    from shipyard.experiments import RunDetail, RunList, RunSummary

__all__ = ["register", "runs"]

out = Console()
err = Console(stderr=True)
FLAGS = {"metric": "--metric", "sort": "--sort", "experiment": "--experiment", "source": "--source"}

Args = Annotated[
    list[str] | None,
    typer.Argument(help="`show NAME` (or just NAME): one run in full.", show_default="list the runs"),
]
ExperimentOpt = Annotated[str | None, typer.Option("--experiment", "-e", help="Only this experiment's runs.")]
MetricOpt = Annotated[
    list[str] | None,
    typer.Option("--metric", "-m", help="A metric to show (repeatable); the first is the one --plot draws."),
]
SortOpt = Annotated[str | None, typer.Option("--sort", help="Order by this metric, highest first.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG of the metric's series across runs.")]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="mlflow or local (Shipyard's run records).", show_default="mlflow when installed"),
]
LimitOpt = Annotated[int, typer.Option("--limit", help="At most this many runs.", min=1)]


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)


def runs(
    args: Args = None,
    experiment: ExperimentOpt = None,
    metric: MetricOpt = None,
    sort: SortOpt = None,
    plot: PlotOpt = None,
    source: SourceOpt = None,
    limit: LimitOpt = 50,
    output: Output = OUTPUT_OPTION,
) -> None:
    """List and compare training runs: status, the hyperparameters that differ, final metrics, cost."""
    from shipyard.errors import UsageError
    from shipyard.experiments import list_runs, plot_runs, show_run

    settings = Settings.from_env()
    words = list(args or [])
    if words == ["show"]:
        raise UsageError("which run? shipyard runs show NAME (shipyard runs lists them)")
    if words[:1] == ["show"]:
        words = words[1:]
    if len(words) > 1:
        raise UsageError(f"one run at a time: shipyard runs show NAME (got {' '.join(words)})")
    try:
        if words:
            _print_detail(show_run(settings, words[0], source=source), output)
            return
        listing = list_runs(settings, experiment=experiment, source=source, sort=sort, limit=limit)
        drawn = plot_runs(settings, listing, plot, metric=metric[0] if metric else None) if plot else None
    except Exception as exc:
        name_the_flag(exc, FLAGS)
        raise
    if listing.note:
        err.print(listing.note, highlight=False, markup=False, soft_wrap=True)
    if output is Output.json:
        print_json("runs", listing.to_json(metrics=metric or (), sort=sort, plot=drawn))
        return
    _print_list(listing, metric)
    if drawn is not None:
        out.print(f"wrote {drawn}", highlight=False, markup=False, soft_wrap=True)


def _print_list(listing: RunList, metric: list[str] | None) -> None:
    where = f"runs from {'MLflow' if listing.source == 'mlflow' else 'run records'} ({listing.location})"
    if not listing.runs:
        out.print(f"no runs in {where.removeprefix('runs from ')}", highlight=False, markup=False)
        return
    several = len({run.experiment for run in listing.runs}) > 1
    hps = listing.comparison.differing
    metrics = list(metric or listing.comparison.metrics)
    header = ["name", *(["experiment"] if several else []), "status", "target", "started", "duration", *hps,
              *metrics, "$ cost"]  # fmt: skip
    rows = [_row(run, several, hps, metrics) for run in listing.runs]
    same = ", ".join(f"{k}={v}" for k, v in listing.comparison.same.items())
    caption = f"same in every run: {same}" if same else None
    optional = [h for h in header if h not in ("name", "status")]
    print_fitted(out, header, rows, required=("name", "status"), optional=optional, title=where, caption=caption,
                 right=[*metrics, "duration", "$ cost"], too_narrow="overflow")  # fmt: skip


def _row(run: RunSummary, several: bool, hps: list[str], metrics: list[str]) -> list[str | Text]:
    colour = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(run.status, "cyan")
    return [
        run.name,
        *([run.experiment] if several else []),
        Text(run.status, style=colour),
        run.target or "–",
        run.started_at.strftime("%Y-%m-%d %H:%M") if run.started_at else "–",
        _seconds(run.duration_s),
        *(run.hyperparameters.get(k, "–") for k in hps),
        *(f"{run.metrics[k]:.6g}" if k in run.metrics else "–" for k in metrics),
        f"{run.cost_usd:.4f}" if run.cost_usd is not None else "–",
    ]


def _print_detail(detail: RunDetail, output: Output) -> None:
    run = detail.run
    if output is Output.json:
        print_json("runs-show", detail.to_json())
        return
    out.print(f"[bold]{run.name}[/] ({run.experiment}): {run.status}, from {detail.source} ({detail.location})",
              highlight=False)  # fmt: skip
    for title, values in (("params", run.params), ("tags", run.tags)):
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("key", no_wrap=True)
        table.add_column("value", overflow="fold")  # a digest or a URI whole, over lines, never cut
        for key, value in sorted(values.items()):
            table.add_row(key, Text(value))
        out.print(table)
    table = Table(title="metrics", title_justify="left")
    for column in ("metric", "points", "first", "last", "min", "max", "last step"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, points in detail.series.items():
        numbers = [p.value for p in points]
        figures = (numbers[0], numbers[-1], min(numbers), max(numbers))
        table.add_row(key, str(len(points)), *(f"{x:.6g}" for x in figures), str(points[-1].step))
    out.print(table)


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{value:.1f}s"
