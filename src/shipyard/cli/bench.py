"""``shipyard bench TARGET --data FILE``: the tutorial's table, a load sweep, a plot, a report, a recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.cli.tables import print_fitted

if TYPE_CHECKING:
    from shipyard.deploy.api import Deployer

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    target: str = typer.Argument(..., help="URL of a server (http://127.0.0.1:8080), or a deployment's name."),
    data: Path = typer.Option(..., "--data", "-d", help="Input rows to build requests from (JSON, JSON Lines, CSV)."),
    sizes: str = typer.Option("1,10,50,500", "--sizes", help="Items per request for the single-request table."),
    repeats: int = typer.Option(5, "--repeats", help="Requests per size."),
    concurrency: str = typer.Option("1,2,4,8,16,32,64", "--concurrency", "-c", help="Closed-loop levels."),
    rate: str | None = typer.Option(None, "--rate", help="Open loop instead: arrival rates in req/s, e.g. 10,50,100."),
    duration: float = typer.Option(5.0, "--duration", help="Seconds per load level (after a short warm-up)."),
    items: int = typer.Option(1, "--items", help="Items per request during the load sweep."),
    output: Path = typer.Option(Path("bench-report"), "--out", "-o", help="Directory for the report and plot."),
    server_vcpus: int | None = typer.Option(
        None,
        "--server-vcpus",
        help="vCPUs of the measured server.",
        show_default="this machine's, for a local URL",
    ),
    peak_rps: float | None = typer.Option(
        None, "--peak-rps", help="Peak load to size instances for.", show_default="the max sustainable load"
    ),
    safety: float = typer.Option(0.5, "--safety", help="Fraction of capacity to plan for (autoscaling headroom)."),
    slo_ms: float | None = typer.Option(None, "--slo-ms", help="p99 latency a load level must keep to count."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Draw bench.png (needs matplotlib)."),
    output_format: Output = OUTPUT_OPTION,
) -> None:
    """Benchmark an endpoint: latency by request size, throughput and latency by load, and what to deploy.

    A sagemaker deployment is measured through InvokeEndpoint from this machine: its latencies include the
    network to AWS and the SageMaker front, as your callers' will.
    """
    from shipyard.bench import OPEN_LOOP_THREADS, run_bench
    from shipyard.client.http import content_type_for
    from shipyard.client.rows import read_items
    from shipyard.config import usable_cores
    from shipyard.errors import InvokeError

    if not data.is_file():
        raise InvokeError(f"--data {data}: no such file")
    rows = read_items(data.read_bytes(), content_type_for(data))
    url, deployer = _resolve(target)
    if server_vcpus is None and _is_local(url):
        server_vcpus = usable_cores()
    levels = _ints(concurrency, "--concurrency")
    transport = None
    if deployer is not None and not url:  # a sagemaker endpoint: InvokeEndpoint, one connection per client
        threads = OPEN_LOOP_THREADS if rate else max(levels)  # one connection per thread that sends
        transport = deployer.transport(target, read_timeout_s=65.0, connections=threads)
        url = f"sagemaker:{target}"
    try:
        report = run_bench(
            url,
            rows,
            sizes=_ints(sizes, "--sizes"),
            repeats=repeats,
            concurrency=levels,
            rates=[float(r) for r in rate.split(",")] if rate else (),
            duration=duration,
            items=items,
            server_vcpus=server_vcpus,
            peak_rps=peak_rps,
            safety=safety,
            slo_p99_ms=slo_ms,
            on_step=lambda message: err.print(f"[dim]· {escape(message)}[/]"),
            transport=transport,
        )
    finally:
        if transport is not None:
            transport.close()
    paths = report.write(output, plot=plot)
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


def _resolve(target: str) -> tuple[str, Deployer | None]:
    """A URL as it is; a deployment's name: its local URL, or "" and the deployer for a sagemaker endpoint."""
    from shipyard.cli.deploy import resolve_invoke_target
    from shipyard.errors import InvokeError

    url, deployer = resolve_invoke_target(target)
    if deployer is None and "://" not in url and ":" not in url and "/" not in url:
        raise InvokeError(f"{target!r} is neither a URL nor a deployment in the state file (see shipyard status)")
    return url, deployer


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
