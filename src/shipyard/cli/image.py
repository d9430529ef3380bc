"""``shipyard build`` and ``shipyard verify``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

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


BundleArg = Annotated[Path, typer.Argument(help="Bundle directory or model.tar.gz.")]
TagOpt = Annotated[
    str | None, typer.Option("--tag", "-t", help="Image NAME:TAG.", show_default="the bundle's NAME:VERSION")
]
BaseOpt = Annotated[
    str | None,
    typer.Option("--base", envvar="SHIPYARD_BASE_IMAGE", help="Base image with CPython.", show_default=DEFAULT_BASE),
]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="docker or podman.", show_default="detected")]
PushOpt = Annotated[str | None, typer.Option("--push", help="Registry to push to, e.g. 127.0.0.1:5000 or an ECR host.")]
EmitOpt = Annotated[Path | None, typer.Option("--emit", help="Also write the Containerfile here.")]
UserOpt = Annotated[bool, typer.Option("--user", help="Non-root USER from the start (Kubernetes runAsNonRoot).")]
BakeOpt = Annotated[
    bool, typer.Option("--bake/--no-bake", help="Model inside the image, or from /opt/ml/model at run time.")
]
PlatformOpt = Annotated[str, typer.Option("--platform", help="linux/amd64 (SageMaker x86) or linux/arm64 (Graviton).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")]
CompileOpt = Annotated[
    str | None,
    typer.Option(
        "--compile",
        help="auto|onnx|off: off serves a compiled bundle's native form; onnx/auto compile a native bundle "
        "(into a copy) and serve it with onnxruntime.",
        show_default="as the bundle was saved",
    ),
]


def build(
    bundle: BundleArg,
    tag: TagOpt = None,
    base: BaseOpt = None,
    engine: EngineOpt = None,
    push: PushOpt = None,
    emit: EmitOpt = None,
    user: UserOpt = False,
    bake: BakeOpt = True,
    platform: PlatformOpt = "linux/amd64",
    no_cache: NoCacheOpt = False,
    compile: CompileOpt = None,
) -> None:
    """Build a SageMaker-ready image of BUNDLE: offline, reproducible, single-platform, non-root workers."""
    from shipyard.image.build import BuildEvent, BuildOptions
    from shipyard.image.build import build as run

    options = BuildOptions(
        tag=tag, base=base or DEFAULT_BASE, engine=engine, platform=platform, bake=bake, non_root=user, push=push,
        emit=emit, no_cache=no_cache, compile=compile.strip().lower() if compile else None,
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


ImageArg = Annotated[str, typer.Argument(help="Image to check (local, or in a registry).")]
MountOpt = Annotated[Path | None, typer.Option("--bundle", help="Mount this bundle at /opt/ml/model (read-only).")]
ExampleOpt = Annotated[
    Path | None, typer.Option("--example", help="A request body to compare with in-process (needs --bundle).")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds for the first /ping 200.")]
GraceOpt = Annotated[float, typer.Option("--grace", help="Seconds SIGTERM may take.")]
MemoryOpt = Annotated[str | None, typer.Option("--memory", help="Container memory limit.", show_default="2g")]
LimitsOpt = Annotated[
    str | None,
    typer.Option(
        "--limits",
        help="serverless[:MEMORY_MB]: run as SageMaker Serverless would (1024-6144 MB, default 2048; no swap; "
        "/ping within 180 s, requests within 60 s) and report cold start and peak memory.",
    ),
]
ArchOpt = Annotated[str, typer.Option("--platform", help="The architecture the image must have.")]
ScanOpt = Annotated[bool, typer.Option("--scan/--no-scan", help="Scan every layer's files for secrets.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="The same as --output json.", hidden=True)]


def verify(
    image: ImageArg,
    bundle: MountOpt = None,
    example: ExampleOpt = None,
    engine: EngineOpt = None,
    timeout: TimeoutOpt = 120.0,
    grace: GraceOpt = 30.0,
    memory: MemoryOpt = None,
    platform: ArchOpt = "linux/amd64",
    scan: ScanOpt = True,
    output: Output = OUTPUT_OPTION,
    as_json: JsonOpt = False,
    limits: LimitsOpt = None,
) -> None:
    """Run IMAGE as SageMaker does and check the container contract; exit 7 when a check fails."""
    from shipyard.errors import SpecError
    from shipyard.image.verify import Check, VerifyOptions, parse_limits
    from shipyard.image.verify import verify as run

    try:
        if limits is not None and memory is not None:
            raise SpecError(
                f"limits {limits} sets the memory itself (serverless:MEMORY_MB); drop --memory {memory}",
                option="limits",
            )
        parsed = parse_limits(limits) if limits is not None else None
    except SpecError as exc:
        from shipyard.cli.deploy import name_the_flag

        name_the_flag(exc, {"limits": "--limits"})
        raise
    options = VerifyOptions(
        bundle=bundle, example=example, engine=engine, platform=platform, timeout=timeout, grace=grace,
        memory=memory or "2g", scan_layers=scan, limits=parsed,
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
        if report.limits:
            peak = f"{report.memory_peak_bytes / 1024**2:,.0f} MiB" if report.memory_peak_bytes else "unknown"
            first = report.cold_start_prediction_s
            out.print(
                f"limits: {report.limits} (memory {(report.memory_limit_bytes or 0) // 1024**2} MiB, no swap; CPU not "
                f"limited); peak {peak}; first correct prediction "
                + (f"{first:.2f} s after start" if first is not None else "never"),
                highlight=False,
            )
    if not report.passed:
        raise VerifyFailed(f"{image} failed: {', '.join(report.failed)}")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"
