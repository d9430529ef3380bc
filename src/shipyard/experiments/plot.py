"""One metric's series across runs, as a PNG (matplotlib, the ``plot`` extra, drawn off-screen)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import SpecError, UsageError
from shipyard.experiments.runs import RunList, SeriesPoint, metric_series
from shipyard.settings import Settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["metric_figure", "plot_metric", "plot_runs"]


def plot_runs(settings: Settings, listing: RunList, path: str | Path, *, metric: str | None = None) -> Path:
    """Write the PNG of ``metric`` across the listed runs (without ``metric``: the one metric they measured)."""
    names = listing.comparison.metrics
    if metric is None:
        if len(names) != 1:
            raise SpecError(f"metric: which one to plot? (metrics: {', '.join(names) or 'none'})", option="metric")
        metric = names[0]
    return plot_metric(metric_series(settings, listing, metric), metric, path)


def metric_figure(series: dict[str, list[SeriesPoint]], metric: str) -> Figure:
    """A figure with one line per run: ``metric`` against its step (a single value is drawn as a point)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("the plot needs matplotlib: pip install 'shipyard[plot]'") from None
    figure = Figure(figsize=(7.0, 4.2))
    axes = figure.add_subplot()
    for name, points in series.items():
        if points:
            axes.plot([p.step for p in points], [p.value for p in points], "o-" if len(points) < 30 else "-",
                      label=name, markersize=3)  # fmt: skip
    axes.set(xlabel="step", ylabel=metric, title=f"{metric} across runs")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_metric(series: dict[str, list[SeriesPoint]], metric: str, path: str | Path) -> Path:
    """Write :func:`metric_figure` to ``path`` (PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metric_figure(series, metric).savefig(path, dpi=110, format="png")
    return path
