"""The benchmark's picture: latency against load, throughput against load, latency against request size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import UsageError

if TYPE_CHECKING:
    from shipyard.bench.report import BenchReport

__all__ = ["draw"]


def draw(report: BenchReport, path: str | Path) -> Path:
    """Write a PNG with up to three panels; needs matplotlib (``pip install 'shipyard[plot]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the plot needs matplotlib: pip install 'shipyard[plot]'") from None
    panels = (1 if report.sweep else 0) * 2 + (1 if report.sizes else 0)
    figure, axes = plt.subplots(1, max(1, panels), figsize=(5.2 * max(1, panels), 4.2), squeeze=False)
    row = list(axes[0])
    if report.sweep:
        rows = report.sweep_rows()
        label = "concurrent clients" if report.sweep[0].mode == "closed" else "offered load (req/s)"
        _latency_panel(row.pop(0), rows, label)
        _throughput_panel(row.pop(0), rows, label)
    if report.sizes:
        _sizes_panel(row.pop(0), report.size_rows())
    figure.suptitle(f"shipyard bench {report.target}", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _latency_panel(latency: Any, rows: list[dict[str, Any]], label: str) -> None:
    """p50, p95 and p99 latency against the load level."""
    levels = [r["level"] for r in rows]
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        points = [(x, r[key]) for x, r in zip(levels, rows, strict=True) if r[key] is not None]
        if points:
            latency.plot(*zip(*points, strict=True), style, label=key.split("_")[0])
    latency.set(xlabel=label, ylabel="latency (ms)", title="Latency vs load")
    latency.set_xscale("log", base=2)
    latency.set_yscale("log")
    if latency.get_legend_handles_labels()[0]:
        latency.legend()
    latency.grid(True, which="both", alpha=0.3)


def _throughput_panel(throughput: Any, rows: list[dict[str, Any]], label: str) -> None:
    """Requests (and items) per second against the load level, with the errors marked."""
    levels = [r["level"] for r in rows]
    throughput.plot(levels, [r["req_per_s"] for r in rows], "o-", label="requests/s")
    if any(r["items_per_request"] != 1 for r in rows):
        throughput.plot(levels, [r["items_per_s"] for r in rows], "s--", label="items/s")
    errors = [(x, sum(r["errors"].values())) for x, r in zip(levels, rows, strict=True) if r["errors"]]
    for x, count in errors:
        throughput.annotate(f"{count} errors", (x, 0), color="red", fontsize=8)
    throughput.set(xlabel=label, ylabel="throughput", title="Throughput vs load")
    throughput.set_xscale("log", base=2)
    throughput.set_ylim(bottom=0)
    if throughput.get_legend_handles_labels()[0]:
        throughput.legend()
    throughput.grid(True, alpha=0.3)


def _sizes_panel(sizes: Any, table: list[dict[str, Any]]) -> None:
    """Median latency (min–max) against the items in one request."""
    ok = [(r["items"], r["median_ms"], r["min_ms"], r["max_ms"]) for r in table if r["median_ms"] is not None]
    if ok:
        xs, med, low, high = zip(*ok, strict=True)
        sizes.errorbar(
            xs,
            med,
            yerr=[
                [m - lo for m, lo in zip(med, low, strict=True)],
                [h - m for m, h in zip(med, high, strict=True)],
            ],
            fmt="o-",
            capsize=3,
            label="median (min–max)",
        )
    for r in table:
        if r["median_ms"] is None:
            sizes.annotate("failed", (r["items"], 1), color="red")
    sizes.set(xlabel="items in one request", ylabel="latency (ms)", title="Latency vs request size")
    sizes.set_xscale("log")
    sizes.set_yscale("log")
    sizes.grid(True, which="both", alpha=0.3)
    if sizes.get_legend_handles_labels()[0]:
        sizes.legend()
