"""``shipyard bench TARGET --data FILE``: the tutorial's table, a load sweep, a plot, a report, a recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.cli.tables import print_fitted

if TYPE_CHECKING:
    from shipyard.bench import BenchReport
    from shipyard.deploy.endpoint import Destination

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


TargetArg = Annotated[str, typer.Argument(help="URL of a server (http://127.0.0.1:8080), or a deployment's name.")]
DataOpt = Annotated[
    Path, typer.Option("--data", "-d", help="Input rows to build requests from (JSON, JSON Lines, CSV).")
]
SizesOpt = Annotated[str, typer.Option("--sizes", help="Items per request for the single-request table.")]
RepeatsOpt = Annotated[int, typer.Option("--repeats", help="Requests per size.")]
ConcurrencyOpt = Annotated[str, typer.Option("--concurrency", "-c", help="Closed-loop levels.")]
RateOpt = Annotated[
    str | None, typer.Option("--rate", help="Open loop instead: arrival rates in req/s, e.g. 10,50,100.")
]
DurationOpt = Annotated[float, typer.Option("--duration", help="Seconds per load level (after a short warm-up).")]
ItemsOpt = Annotated[int, typer.Option("--items", help="Items per request during the load sweep.")]
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Directory for the report and plot.")]
VcpusOpt = Annotated[
    int | None,
    typer.Option(
        "--server-vcpus", help="vCPUs of the measured server.", show_default="this machine's, for a local URL"
    ),
]
PeakOpt = Annotated[
    float | None,
    typer.Option("--peak-rps", help="Peak load to size instances for.", show_default="the max sustainable load"),
]
SafetyOpt = Annotated[float, typer.Option("--safety", help="Fraction of capacity to plan for (autoscaling headroom).")]
SloOpt = Annotated[float | None, typer.Option("--slo-ms", help="p99 latency a load level must keep to count.")]
PlotOpt = Annotated[bool, typer.Option("--plot/--no-plot", help="Draw bench.png (needs matplotlib).")]


def bench(
    target: TargetArg,
    data: DataOpt,
    sizes: SizesOpt = "1,10,50,500",
    repeats: RepeatsOpt = 5,
    concurrency: ConcurrencyOpt = "1,2,4,8,16,32,64",
    rate: RateOpt = None,
    duration: DurationOpt = 5.0,
    items: ItemsOpt = 1,
    output: OutDirOpt = Path("bench-report"),
    server_vcpus: VcpusOpt = None,
    peak_rps: PeakOpt = None,
    safety: SafetyOpt = 0.5,
    slo_ms: SloOpt = None,
    plot: PlotOpt = True,
    output_format: Output = OUTPUT_OPTION,
) -> None:
    """Benchmark an endpoint: latency by request size, throughput and latency by load, and what to deploy.

    A sagemaker deployment is measured through InvokeEndpoint from this machine: its latencies include the
    network to AWS and the SageMaker front, as your callers' will.
    """
    from shipyard.config import usable_cores

    rows = _rows(data)
    where = _resolve(target)
    if server_vcpus is None and _is_local(where.url):
        server_vcpus = usable_cores()
    levels = _ints(concurrency, "--concurrency")
    options: dict[str, Any] = {
        "sizes": _ints(sizes, "--sizes"),
        "repeats": repeats,
        "concurrency": levels,
        "rates": [float(r) for r in rate.split(",")] if rate else (),
        "duration": duration,
        "items": items,
        "server_vcpus": server_vcpus,
        "peak_rps": peak_rps,
        "safety": safety,
        "slo_p99_ms": slo_ms,
    }
    report = _measure(where, target, rows, options)
    _print(report, _write(report, output, plot), output_format)


def _rows(data: Path) -> list[Any]:
    from shipyard.client.rows import read_items
    from shipyard.codecs.media import content_type_for
    from shipyard.errors import InvokeError, UsageError

    if not data.is_file():
        raise InvokeError(f"--data {data}: no such file")
    rows = read_items(data.read_bytes(), content_type_for(data))
    if not rows:
        raise UsageError("the benchmark needs at least one input row (--data FILE)")
    return rows


def _measure(where: Destination, target: str, rows: list[Any], options: dict[str, Any]) -> BenchReport:
    """A URL is measured with the bench's own lean HTTP senders; a sagemaker deployment through its transport."""
    from shipyard.bench import OPEN_LOOP_THREADS, run_bench

    url, transport = where.url, None
    if where.deployer is not None and not where.url:  # sagemaker: InvokeEndpoint, a connection per thread
        threads = OPEN_LOOP_THREADS if options["rates"] else max(options["concurrency"])
        transport = where.transport(read_timeout_s=65.0, connections=threads)
        url = f"sagemaker:{target}"
    try:
        return run_bench(
            url, rows, on_step=lambda message: err.print(f"[dim]· {escape(message)}[/]"), transport=transport, **options
        )
    finally:
        if transport is not None:
            transport.close()


def _write(report: BenchReport, output: Path, plot: bool) -> dict[str, Path]:
    from shipyard.errors import UsageError

    try:
        return report.write(output, plot=plot)
    except UsageError as exc:
        if plot and "matplotlib" in str(exc):
            raise UsageError(f"{exc} (or pass --no-plot)") from exc
        raise


def _print(report: BenchReport, paths: dict[str, Path], output_format: Output) -> None:
    if output_format is Output.json:
        print_json("bench", {**report.to_dict(), "files": {kind: str(path) for kind, path in paths.items()}})
        return
    for title, header, body in report.tables():
        # every figure whole: a narrow terminal loses the least useful columns, a pipe gets them all
        required = [name for name in header if name in _REQUIRED]
        optional = [name for name in _OPTIONAL if name in header]
        print_fitted(
            out, header, body, required=required, optional=optional, title=title, right=header, too_narrow="overflow"
        )
    from rich.markdown import Markdown  # markdown-it costs 40 ms: only the one command that prints it pays

    out.print(Markdown("\n".join(f"- {line}" for line in report.recommendation_lines())))
    out.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False, markup=False)


# the columns of report.tables() a reader needs, and the rest, most useful first
_REQUIRED = ("items per request", "concurrency", "offered req/s", "median ms", "req/s", "p50 ms", "p99 ms")
_OPTIONAL = ("errors", "items/s", "p95 ms", "max ms", "min ms", "items/req", "requests", "spread ms")


def _resolve(target: str) -> Destination:
    """A URL as it is; a deployment's name: its local URL, or its transport for a sagemaker endpoint."""
    from shipyard.cli.deploy import deployer_for
    from shipyard.deploy.endpoint import destination, is_url
    from shipyard.errors import InvokeError

    where = destination(target, lambda: deployer_for(None))
    if where.deployer is None and not is_url(where.url):
        raise InvokeError(f"{target!r} is neither a URL nor a deployment in the state file (see shipyard status)")
    return where


def _is_local(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"{option} is empty")
    return values
