"""``shipyard bench TARGET --data FILE``: the tutorial's table, a load sweep, a plot, a report, a recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.cli.invoke import ViaOpt
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
    via: ViaOpt = "endpoint",
    output_format: Output = OUTPUT_OPTION,
) -> None:
    """Benchmark an endpoint: latency by request size, throughput and latency by load, and what to deploy.

    A sagemaker deployment is measured through InvokeEndpoint from this machine: its latencies include the
    network to AWS and the SageMaker front, as your callers' will. `--via api` measures its public API (shipyard
    expose) instead, key and all. A deployment keeps the figures of its last bench: its latency alarm's
    threshold follows them.
    """
    from shipyard.config import usable_cores

    rows = _rows(data)
    where = _resolve(target, via)
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
    kept = _keep(where, report)
    _print(report, _write(report, output, plot), output_format, kept)


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
    # sagemaker: InvokeEndpoint, a connection per thread; --via api: the public API, with its key or signature
    if where.deployer is not None and (not where.url or where.via == "api"):
        threads = OPEN_LOOP_THREADS if options["rates"] else max(options["concurrency"])
        transport = where.transport(read_timeout_s=65.0, connections=threads)
        url = f"api:{target}" if where.via == "api" else f"sagemaker:{target}"
    try:
        return run_bench(
            url, rows, on_step=lambda message: err.print(f"[dim]· {escape(message)}[/]"), transport=transport, **options
        )
    finally:
        if transport is not None:
            transport.close()


def _keep(where: Destination, report: BenchReport) -> str | None:
    """A deployment keeps its last bench's figures (``Deployer.note_bench``); what that changed, for people."""
    from shipyard.deploy.state import BenchFigures, now_utc

    figures = report.headline()
    if where.deployer is None or where.name is None or figures.get("p99_ms") is None:
        return None
    kept = BenchFigures(
        p50_ms=float(figures["p50_ms"] or 0.0),
        p99_ms=float(figures["p99_ms"] or 0.0),
        max_ms=float(figures["max_ms"] or 0.0),
        rps=figures.get("rps"),
        measured_at=now_utc().isoformat(),
        via=where.via,
    )
    where.deployer.note_bench(where.name, kept)
    return f"kept as {where.name}'s last bench: p50 {kept.p50_ms:g} ms, p99 {kept.p99_ms:g} ms"


def _write(report: BenchReport, output: Path, plot: bool) -> dict[str, Path]:
    from shipyard.errors import UsageError

    try:
        return report.write(output, plot=plot)
    except UsageError as exc:
        if plot and "matplotlib" in str(exc):
            raise UsageError(f"{exc} (or pass --no-plot)") from exc
        raise


def _print(report: BenchReport, paths: dict[str, Path], output_format: Output, kept: str | None) -> None:
    if output_format is Output.json:
        document = {**report.to_dict(), "files": {kind: str(path) for kind, path in paths.items()}}
        print_json("bench", {**document, "kept": kept} if kept else document)
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
    if kept:
        out.print(kept, highlight=False, markup=False)


# the columns of report.tables() a reader needs, and the rest, most useful first
_REQUIRED = ("items per request", "concurrency", "offered req/s", "median ms", "req/s", "p50 ms", "p99 ms")
_OPTIONAL = ("errors", "items/s", "p95 ms", "max ms", "min ms", "items/req", "requests", "spread ms")


def _resolve(target: str, via: str = "endpoint") -> Destination:
    """A URL as it is; a deployment's name: its local URL, or its transport for a sagemaker endpoint (or its
    public API, ``via="api"``)."""
    from shipyard.cli.deploy import deployer_for
    from shipyard.deploy.endpoint import destination, is_url
    from shipyard.errors import InvokeError

    where = destination(target, lambda: deployer_for(None), via=via)
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
