"""``shipyard deploy``, ``status``, ``cleanup``, ``logs``: endpoints on ``local`` or ``sagemaker``."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from shipyard.deploy import Deployer, Plan

out = Console()
err = Console(stderr=True)

__all__ = ["register", "resolve_invoke_target"]


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("status")(status)
    app.command("cleanup")(cleanup)
    app.command("logs")(logs)


class CliReporter:
    """Steps as lines, the wait as one live status line on stderr."""

    def __init__(self) -> None:
        self._status = None
        self._live = err.is_terminal

    def step(self, message: str) -> None:
        self._clear()
        err.print(f"[green]✓[/] {message}", highlight=False)

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        text = f"{state} … {elapsed_s:5.1f} s" + (f"  {detail}" if detail else "")
        if self._live:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
            self._status = text  # type: ignore[assignment]
        elif state not in {"Creating", "Updating", "Building"}:
            err.print(text, highlight=False)

    def _clear(self) -> None:
        if self._status is not None:
            sys.stderr.write("\r\033[K")
            self._status = None

    def done(self) -> None:
        if self._status is not None:
            sys.stderr.write("\n")
            self._status = None


def _deployer(state: Path | None, reporter: CliReporter | None = None) -> Deployer:
    from shipyard.deploy import Deployer
    from shipyard.state import StateStore

    return Deployer(StateStore(state), reporter=reporter)


STATE_OPTION = typer.Option(None, "--state", help="State file [default: $SHIPYARD_STATE or ~/.shipyard/state.json].")


def deploy(
    source: str | None = typer.Argument(None, help="A bundle directory, a model.tar.gz, or an image reference."),
    name: str | None = typer.Option(None, "--name", "-n", help="Endpoint name (letters, digits, hyphens; ≤ 63)."),
    target: str | None = typer.Option(None, "--target", help="local (default) or sagemaker."),
    update: str | None = typer.Option(None, "--update", help="Replace the model of this existing deployment."),
    instance_type: str | None = typer.Option(None, "--instance-type", help="[default: ml.m5.large]"),
    instance_count: int | None = typer.Option(None, "--instance-count", help="[default: 1]"),
    serverless: str | None = typer.Option(None, "--serverless", help="MEMORY_MB:MAX_CONCURRENCY, e.g. 2048:10."),
    autoscale: str | None = typer.Option(None, "--autoscale", help="MIN:MAX instances (needs --max-rps)."),
    max_rps: float | None = typer.Option(None, "--max-rps", help="Requests/s one instance sustains (autoscaling)."),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE for the container (repeatable)."),
    secret: list[str] = typer.Option([], "--secret", help="Secrets Manager NAME or VAR=NAME (repeatable)."),
    data_capture: int | None = typer.Option(None, "--data-capture", help="Percent of requests captured."),
    startup_timeout: int | None = typer.Option(None, "--startup-timeout", help="Seconds for /ping [default: 600]."),
    region: str | None = typer.Option(None, "--region", help="AWS region [default: the AWS configuration's]."),
    role_arn: str | None = typer.Option(None, "--role-arn", help="Use this execution role instead of creating one."),
    ttl: str | None = typer.Option(None, "--ttl", help="Mark for deletion after this long (e.g. 2h, 3d)."),
    image: str | None = typer.Option(None, "--image", help="A prebuilt image for the bundle (from shipyard build)."),
    base: str | None = typer.Option(None, "--base", help="Base image when building [default: python:3.11-slim]."),
    engine: str | None = typer.Option(None, "--engine", help="docker or podman [default: detected]."),
    port: int | None = typer.Option(None, "--port", help="local: the port on 127.0.0.1 [default: a free one]."),
    bucket: str | None = typer.Option(
        None, "--bucket", help="sagemaker: S3 bucket [default: sagemaker-REGION-ACCOUNT]."
    ),
    log_retention: int | None = typer.Option(None, "--log-retention", help="Days CloudWatch keeps logs [default: 30]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and its estimated cost; create nothing."),
    state: Path | None = STATE_OPTION,
) -> None:
    """Deploy a bundle or an image as an endpoint: `local` (the real image under Podman/Docker) or `sagemaker`."""
    from shipyard.deploy import DeploySpec
    from shipyard.deploy.spec import options_from, parse_env
    from shipyard.errors import SpecError

    if source is None:
        raise SpecError("deploy needs a SOURCE: a bundle directory, a model.tar.gz or an image")
    options = options_from(
        target=target,
        instance_type=instance_type,
        instance_count=instance_count,
        serverless=serverless,
        autoscale=autoscale,
        max_rps=max_rps,
        env=parse_env(env),
        secrets=secret,
        data_capture=data_capture,
        startup_timeout=startup_timeout,
        region=region,
        role_arn=role_arn,
        ttl=ttl,
        image=image,
        port=port,
        base_image=base,
        engine=engine,
        bucket=bucket,
        log_retention_days=log_retention,
        # Push to this registry instead of ECR's host and record the image in ECR (a mirror; a local registry
        # in tests, where moto serves the ECR API but no registry).
        registry_override=os.environ.get("SHIPYARD_ECR_REGISTRY") or None,
    )
    reporter = CliReporter()
    deployer = _deployer(state, reporter)
    started = time.perf_counter()
    try:
        if update:
            endpoint = deployer.update(update, source, **options)
        else:
            if not name:
                raise SpecError("deploy needs --name NAME (or --update NAME)")
            spec = DeploySpec(source=source, name=name, **options)
            if dry_run:
                _print_plan(deployer.plan(spec))
                return
            endpoint = deployer.deploy(spec)
    except Exception as exc:
        reporter.done()
        _print_failure(exc)
        raise
    reporter.done()
    where = endpoint.url or f"{endpoint.record.region} (sagemaker-runtime)"
    out.print(
        f"[bold green]{endpoint.status}[/] {endpoint.name} on {endpoint.target}: {where} "
        f"in {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    out.print(f"try: shipyard invoke {endpoint.name} --data request.json", highlight=False)


def _print_failure(exc: Exception) -> None:
    tail = getattr(exc, "log_tail", ())
    if tail:
        err.print("[bold]last log lines of the container:[/]")
        for line in tail[-20:]:
            err.print(f"  {line}", highlight=False, markup=False)


def _print_plan(plan: Plan) -> None:
    table = Table(title=f"plan: deploy {plan.deployment} to {plan.target} (dry run: nothing is created)")
    table.add_column("resource")
    table.add_column("name")
    table.add_column("detail")
    table.add_column("est. $/month", justify="right")
    for item in plan.resources:
        cost = "–" if item.monthly_usd is None else f"{item.monthly_usd:,.2f}"
        table.add_row(item.kind, item.name, item.detail, cost)
    table.caption = f"total ≈ ${plan.monthly_usd:,.2f}/month · {plan.price_label}"
    out.print(table)
    for note in plan.notes:
        out.print(f"note: {note}", highlight=False)


def status(
    name: str | None = typer.Argument(None, help="One deployment [default: all]."),
    reconcile: bool = typer.Option(False, "--reconcile", help="Rebuild the list from AWS tags and the engine."),
    region: str | None = typer.Option(None, "--region", help="Region for --reconcile."),
    state: Path | None = STATE_OPTION,
) -> None:
    """List deployments: target, state, size, age, TTL and estimated cost (list prices)."""
    from shipyard.pricing import prices

    deployer = _deployer(state)
    if reconcile:
        deployer.reconcile(region)
    rows = deployer.status(name)
    table = Table(title=f"deployments ({deployer.state.path})")
    for column in ("name", "target", "state", "size", "created", "age", "TTL", "$/hour", "$ so far"):
        table.add_column(column, justify="right" if column.startswith("$") else "left")
    for row in rows:
        ttl = "–"
        if row.expires_at:
            ttl = "[red]expired[/]" if row.expired else f"{_age(row.expires_at - row.created - row.age)} left"
        table.add_row(
            row.name,
            row.target,
            row.status,
            row.size,
            row.created.strftime("%Y-%m-%d %H:%M"),
            _age(row.age),
            ttl,
            "?" if row.hourly_usd is None else f"{row.hourly_usd:.3f}",
            "?" if row.so_far_usd is None else f"{row.so_far_usd:.2f}",
        )
    table.caption = f"estimates from {prices().label}"
    out.print(table)
    for row in rows:
        if row.failure and row.status not in {"InService"}:
            out.print(f"{row.name}: {row.failure}", highlight=False)
        if row.expired:
            out.print(f"[yellow]{row.name} is past its TTL: `shipyard cleanup --expired` deletes it[/]")
    if not rows:
        out.print("no deployments")


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"


def cleanup(
    name: str | None = typer.Argument(None, help="The deployment to delete."),
    all_: bool = typer.Option(False, "--all", help="Every deployment in the state file."),
    expired: bool = typer.Option(False, "--expired", help="Every deployment past its --ttl."),
    keep_artifacts: bool = typer.Option(False, "--keep-artifacts", help="Keep the ECR image and S3 model.tar.gz."),
    state: Path | None = STATE_OPTION,
) -> None:
    """Delete a deployment's resources in dependency order (idempotent; run again to finish a partial one)."""
    from shipyard.errors import SpecError

    deployer = _deployer(state, CliReporter())
    if sum([bool(name), all_, expired]) != 1:
        raise SpecError("cleanup takes one of: NAME, --all, --expired")
    names = [name] if name else (deployer.expired() if expired else [r.name for r in deployer.state.all()])
    if not names:
        out.print("nothing to clean up")
    for each in names:
        report = deployer.cleanup(each, keep_artifacts=keep_artifacts)
        kept = f"; kept {len(report.kept)}" if report.kept else ""
        out.print(
            f"[bold]{each}[/]: deleted {len(report.deleted)}, already gone {len(report.already_gone)}{kept}",
            highlight=False,
        )
        for item in report.kept:
            out.print(f"  kept {item}", highlight=False)


def logs(
    name: str = typer.Argument(..., help="The deployment."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many of the last lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (Ctrl-C stops)."),
    state: Path | None = STATE_OPTION,
) -> None:
    """The container's log (the engine's for local, CloudWatch Logs for sagemaker)."""
    deployer = _deployer(state)
    try:
        for line in deployer.logs(name, lines=lines, follow=follow):
            print(line, flush=True)
    except KeyboardInterrupt:
        return


def resolve_invoke_target(target: str, state: Path | None = None) -> tuple[str, Deployer | None]:
    """``shipyard invoke`` takes a URL or a deployment name: (URL, None) or (the local URL or "", deployer)."""
    if "://" in target or ":" in target or "/" in target:
        return target, None
    deployer = _deployer(state)
    record = deployer.state.get(target)
    if record is None:
        return target, None
    return record.url or "", deployer
