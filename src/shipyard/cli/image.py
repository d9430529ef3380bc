"""``shipyard build`` and ``shipyard verify``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.errors import VerifyFailed

out = Console()
err = Console(stderr=True)

# The builder's default base image (shipyard.image.build.DEFAULT_BASE) as `build --help` and `deploy --help`
# show it, written out: importing the builder here would slow every command. tests/cli/test_help.py checks it.
DEFAULT_BASE = "python:3.11-slim"

_STATUS = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]skip[/]"}


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("verify")(verify)


def build(
    bundle: Path = typer.Argument(..., help="Bundle directory or model.tar.gz."),
    tag: str | None = typer.Option(
        None, "--tag", "-t", help="Image NAME:TAG.", show_default="the bundle's NAME:VERSION"
    ),
    base: str | None = typer.Option(None, "--base", help="Base image with CPython.", show_default=DEFAULT_BASE),
    engine: str | None = typer.Option(None, "--engine", help="docker or podman.", show_default="detected"),
    push: str | None = typer.Option(None, "--push", help="Registry to push to, e.g. 127.0.0.1:5000 or an ECR host."),
    emit: Path | None = typer.Option(None, "--emit", help="Also write the Containerfile here."),
    user: bool = typer.Option(False, "--user", help="Non-root USER from the start (Kubernetes runAsNonRoot)."),
    bake: bool = typer.Option(
        True, "--bake/--no-bake", help="Model inside the image, or from /opt/ml/model at run time."
    ),
    platform: str = typer.Option(
        "linux/amd64", "--platform", help="linux/amd64 (SageMaker x86) or linux/arm64 (Graviton)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild every layer."),
) -> None:
    """Build a SageMaker-ready image of BUNDLE: offline, reproducible, single-platform, non-root workers."""
    from shipyard.image.build import BuildEvent, BuildOptions
    from shipyard.image.build import build as run

    options = BuildOptions(
        tag=tag, base=base or DEFAULT_BASE, engine=engine, platform=platform, bake=bake, non_root=user, push=push,
        emit=emit, no_cache=no_cache,
    )  # fmt: skip
    started = time.perf_counter()
    with err.status("building", spinner="dots") as status:

        def show(event: BuildEvent) -> None:
            elapsed = time.perf_counter() - started
            if event.kind == "phase":
                err.print(f"[dim]{elapsed:6.1f}s[/] {event.text}", highlight=False)
            elif event.kind == "step":
                where = f"step {event.step}/{event.total} " if event.step else ""
                status.update(f"{where}{event.text[:100]}")
            elif event.text.strip():
                status.update(f"[dim]{event.text.strip()[:110]}[/]")

        result = run(bundle, options, show)
    table = Table(
        title=f"{result.image} — {result.size / 1e6:,.0f} MB, {len(result.layers)} layers", title_justify="left"
    )
    table.add_column("size", justify="right")
    table.add_column("layer")
    for layer in reversed(result.layers):
        table.add_row(_mb(layer.size), layer.created_by.replace("/bin/sh -c #(nop) ", "")[:100])
    out.print(table)
    out.print(
        f"built [bold]{result.image}[/] ({result.image_id[:12]}) with {result.engine} in {result.seconds:.1f} s; "
        f"CPython {result.target.python} {options.platform}; {len(result.requirements)} packages; "
        f"bundle sha256 {result.bundle_hash[:12]}",
        highlight=False,
    )
    if emit:
        out.print(f"Containerfile written to {emit}")
    if result.pushed:
        out.print(f"pushed [bold]{result.pushed}[/]")


def verify(
    image: str = typer.Argument(..., help="Image to check (local, or in a registry)."),
    bundle: Path | None = typer.Option(None, "--bundle", help="Mount this bundle at /opt/ml/model (read-only)."),
    example: Path | None = typer.Option(
        None, "--example", help="A request body to compare with in-process (needs --bundle)."
    ),
    engine: str | None = typer.Option(None, "--engine", help="docker or podman.", show_default="detected"),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds for the first /ping 200."),
    grace: float = typer.Option(30.0, "--grace", help="Seconds SIGTERM may take."),
    memory: str = typer.Option("2g", "--memory", help="Container memory limit."),
    platform: str = typer.Option("linux/amd64", "--platform", help="The architecture the image must have."),
    scan: bool = typer.Option(True, "--scan/--no-scan", help="Scan every layer's files for secrets."),
    output: Output = OUTPUT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="The same as --output json.", hidden=True),
) -> None:
    """Run IMAGE as SageMaker does and check the container contract; exit 7 when a check fails."""
    from shipyard.image.verify import Check, VerifyOptions
    from shipyard.image.verify import verify as run

    options = VerifyOptions(
        bundle=bundle, example=example, engine=engine, platform=platform, timeout=timeout, grace=grace,
        memory=memory, scan_layers=scan,
    )  # fmt: skip
    with err.status("verifying", spinner="dots") as status:

        def show(check: Check) -> None:
            status.update(f"{check.name}: {check.status}")

        report = run(image, options, show)
    if as_json or output is Output.json:
        print_json("verify", report.to_dict())
    else:
        table = Table(title=escape(f"shipyard verify {image}"), title_justify="left")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        for check in report.checks:
            table.add_row(check.name, _STATUS[check.status], Text(check.detail))  # a log tail is not markup
        out.print(table)
        out.print(f"network: {report.network}", highlight=False)
    if not report.passed:
        raise VerifyFailed(f"{image} failed: {', '.join(report.failed)}")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"
