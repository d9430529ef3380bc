"""``shipyard deploy``, ``cleanup``, ``logs``: endpoints on ``local`` or ``sagemaker`` (``status``: cli/status.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shipyard.cli.image import DEFAULT_BASE

if TYPE_CHECKING:
    from shipyard.deploy import CleanupReport, Deployer, Endpoint, Plan
    from shipyard.deploy.state import StateStore
    from shipyard.registry import Resolved

out = Console()
err = Console(stderr=True)

__all__ = ["FLAGS", "STATE_OPTION", "deployer_for", "name_the_flag", "register"]


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("cleanup")(cleanup)
    app.command("logs")(logs)


class CliReporter:
    """Steps as lines, the wait as one live status line on stderr."""

    def __init__(self) -> None:
        self._status = None
        self._live = err.is_terminal

    def step(self, message: str) -> None:
        self._clear()
        err.print(f"[green]✓[/] {escape(message)}", highlight=False)

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


def deployer_for(state: Path | None, reporter: CliReporter | None = None) -> Deployer:
    """The deployer of the command: the tool's settings from the environment, ``--state`` over them."""
    from shipyard.deploy import Deployer
    from shipyard.deploy.state import StateStore
    from shipyard.settings import Settings

    settings = Settings.from_env(state_path=state)
    return Deployer(StateStore(settings=settings), reporter=reporter, settings=settings)


# The library's defaults as --help shows them, written out: importing shipyard.deploy or shipyard.image here
# would cost every command ~0.2 s. tests/cli/test_help.py checks them against DeployOptions and the builder.
# (DEFAULT_BASE is the build's: cli/image.py has it, and every command module is imported at start anyway.)
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_STARTUP_TIMEOUT_S = 600
DEFAULT_LOG_RETENTION_DAYS = 30

# Typer shows a default it cannot see (these options are None until the library fills them in) only through
# show_default: a "[default: ...]" inside a help text is read as Rich markup and vanishes, leaving "State file ."
STATE_OPTION = typer.Option(
    None, "--state", help="The state file.", show_default="$SHIPYARD_STATE, else ~/.shipyard/state.json"
)

# Each parameter of `deploy` that sets an option of DeployOptions: (the option, its flag). An error names the
# option as the library does; the command shows its flag instead.
OPTIONS = {
    "target": ("target", "--target"),
    "instance_type": ("instance_type", "--instance-type"),
    "instance_count": ("instance_count", "--instance-count"),
    "serverless": ("serverless", "--serverless"),
    "autoscale": ("autoscale", "--autoscale"),
    "max_rps": ("max_rps", "--max-rps"),
    "env": ("env", "--env"),
    "secret": ("secrets", "--secret"),
    "data_capture": ("data_capture_pct", "--data-capture"),
    "startup_timeout": ("startup_timeout_s", "--startup-timeout"),
    "region": ("region", "--region"),
    "role_arn": ("role_arn", "--role-arn"),
    "ttl": ("ttl", "--ttl"),
    "image": ("image", "--image"),
    "base": ("base_image", "--base"),
    "engine": ("engine", "--engine"),
    "port": ("port", "--port"),
    "bucket": ("bucket", "--bucket"),
    "log_retention": ("log_retention_days", "--log-retention"),
    "canary": ("canary", "--canary"),
    "linear": ("linear", "--linear"),
    "all_at_once": ("all_at_once", "--all-at-once"),
    "bake": ("bake", "--bake"),
    "alarms": ("alarms", "--no-alarms"),
    "notify": ("notify", "--notify"),
    "idle": ("idle", "--idle"),
    "idle_action": ("idle_action", "--idle-action"),
    "async_": ("async_inference", "--async"),
    "async_output": ("async_output", "--async-output"),
    "async_failure": ("async_failure", "--async-failure"),
    "notify_success": ("notify_success", "--notify-success"),
    "notify_error": ("notify_error", "--notify-error"),
    "max_concurrent": ("max_concurrent", "--max-concurrent"),
    "invocation_timeout": ("invocation_timeout", "--invocation-timeout"),
}
# The guardrails' typed options (DeployOptions.rollout and bake_s) name their flags too.
FLAGS = {
    "name": "--name",
    **dict(OPTIONS.values()),
    "bake_s": "--bake",
    "rollout": "--canary/--linear/--all-at-once",
}

# The command's parameters, declared once (the signature below stays short).
Source = Annotated[
    str | None,
    typer.Argument(
        help="A bundle directory, a model.tar.gz, an image reference, run:NAME (a training run's bundle) or "
        "GROUP/VERSION (a registered model version)."
    ),
]
Name = Annotated[str | None, typer.Option("--name", "-n", help="Endpoint name (letters, digits, hyphens; ≤ 63).")]
TargetOpt = Annotated[str, typer.Option("--target", help="local or sagemaker.")]
UpdateOpt = Annotated[str | None, typer.Option("--update", help="Replace the model of this existing deployment.")]
InstanceType = Annotated[str, typer.Option("--instance-type", help="sagemaker: the hosting instance type.")]
InstanceCount = Annotated[int, typer.Option("--instance-count", help="sagemaker: instances behind the endpoint.")]
ServerlessOpt = Annotated[str | None, typer.Option("--serverless", help="MEMORY_MB:MAX_CONCURRENCY, e.g. 2048:10.")]
AutoscaleOpt = Annotated[str | None, typer.Option("--autoscale", help="MIN:MAX instances (needs --max-rps).")]
MaxRps = Annotated[float | None, typer.Option("--max-rps", help="Requests/s one instance sustains (autoscaling).")]
EnvOpt = Annotated[list[str], typer.Option("--env", "-e", help="KEY=VALUE for the container (repeatable).")]
SecretOpt = Annotated[list[str], typer.Option("--secret", help="Secrets Manager NAME or VAR=NAME (repeatable).")]
DataCapture = Annotated[int | None, typer.Option("--data-capture", help="Percent of requests captured.")]
StartupTimeout = Annotated[
    int, typer.Option("--startup-timeout", help="Seconds the container may take to answer /ping with 200.")
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region.", show_default="the AWS configuration's")]
RoleArn = Annotated[str | None, typer.Option("--role-arn", help="Use this execution role instead of creating one.")]
Ttl = Annotated[
    str | None,
    typer.Option(
        "--ttl",
        help="Delete the endpoint after this long (e.g. 2h, 3d): on sagemaker an EventBridge Scheduler schedule "
        "deletes it in AWS, no laptop needed (docs/cost.md); with --update, counted again from now (off: no TTL).",
    ),
]
ImageOpt = Annotated[str | None, typer.Option("--image", help="A prebuilt image for the bundle (from shipyard build).")]
Base = Annotated[str, typer.Option("--base", envvar="SHIPYARD_BASE_IMAGE", help="Base image when building.")]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="docker or podman.", show_default="detected")]
Port = Annotated[int | None, typer.Option("--port", help="local: the port on 127.0.0.1.", show_default="a free one")]
Bucket = Annotated[
    str | None,
    typer.Option(
        "--bucket", help="sagemaker: the S3 bucket for model.tar.gz.", show_default="sagemaker-REGION-ACCOUNT"
    ),
]
LogRetention = Annotated[int, typer.Option("--log-retention", help="Days CloudWatch keeps the logs.")]
AlarmsOpt = Annotated[
    bool,
    typer.Option("--alarms/--no-alarms", help="sagemaker: CloudWatch alarms and a dashboard (docs/edge.md)."),
]
NotifyOpt = Annotated[
    str | None,
    typer.Option("--notify", help="sagemaker: who the alarms tell: an EMAIL (a topic is made) or an SNS ARN."),
]
IdleOpt = Annotated[
    str | None,
    typer.Option(
        "--idle",
        help="sagemaker: an alarm when the endpoint has no invocation for this long (e.g. 4h; 1h to 7d); it tells "
        "--notify, and with --idle-action delete deletes the endpoint (docs/cost.md); with --update, off removes it.",
    ),
]
IdleActionOpt = Annotated[
    str,
    typer.Option(
        "--idle-action",
        help="sagemaker, with --idle: notify (tell --notify) or delete (also delete the endpoint, through an "
        "EventBridge rule and a Step Functions state machine in AWS).",
    ),
]
RegistryOpt = Annotated[
    str, typer.Option("--registry", help="The model registry of a GROUP/VERSION source: local or sagemaker.")
]
AllowUnapproved = Annotated[
    bool, typer.Option("--allow-unapproved", help="Deploy a GROUP/VERSION that is not Approved.")
]
CanaryOpt = Annotated[
    str | None,
    typer.Option(
        "--canary",
        help="With --update (sagemaker): PERCENT%:WAIT, e.g. 10%:5m: that share of the new fleet's capacity "
        "first, then the rest after WAIT without an alarm.",
    ),
]
LinearOpt = Annotated[
    str | None,
    typer.Option(
        "--linear", help="With --update (sagemaker): PERCENT%:WAIT, e.g. 25%:2m: that much more traffic every WAIT."
    ),
]
AllAtOnce = Annotated[
    bool, typer.Option("--all-at-once", help="With --update (sagemaker): all traffic to the new fleet in one step.")
]
BakeOpt = Annotated[
    str | None,
    typer.Option(
        "--bake",
        help="With --update (sagemaker): --all-at-once: the baking period the alarms watch before the old fleet goes; "
        "after a canary or linear rollout: how long the old fleet is kept (e.g. 10m).",
        show_default="0s",
    ),
]
AsyncOpt = Annotated[
    bool,
    typer.Option(
        "--async",
        help="Asynchronous inference: requests queued, answers written to S3 (local: a directory); up to 1 GB and "
        "an hour a request; `shipyard invoke NAME --async`, `shipyard results NAME ID` (docs/hosting-modes.md).",
    ),
]
AsyncOutputOpt = Annotated[
    str | None,
    typer.Option(
        "--async-output", help="--async: where answers go (s3://...).", show_default="s3://BUCKET/async/NAME/output"
    ),
]
AsyncFailureOpt = Annotated[
    str | None,
    typer.Option(
        "--async-failure", help="--async: where errors go (s3://...).", show_default="s3://BUCKET/async/NAME/failure"
    ),
]
NotifySuccessOpt = Annotated[
    str | None, typer.Option("--notify-success", help="--async: an SNS topic (ARN or name) told of each answer.")
]
NotifyErrorOpt = Annotated[
    str | None, typer.Option("--notify-error", help="--async: an SNS topic (ARN or name) told of each failure.")
]
MaxConcurrentOpt = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent",
        help="--async: requests one instance works on at once (MaxConcurrentInvocationsPerInstance).",
        show_default="SageMaker's choice; local: the workers",
    ),
]
InvocationTimeoutOpt = Annotated[
    int | None,
    typer.Option("--invocation-timeout", help="--async: seconds a request may take (1-3600).", show_default="3600"),
]
MultiModelOpt = Annotated[
    str | None,
    typer.Option(
        "--multi-model",
        help="Serve many models from one endpoint (SageMaker's MultiModel mode): DIR (bundles and model.tar.gz "
        "files) or s3://bucket/prefix/; each request names its model (shipyard invoke --target-model a.tar.gz).",
        show_default="one model",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Print the plan and its estimated cost; create nothing (needs no AWS credentials or network)."
    ),
]


def deploy(
    ctx: typer.Context,
    source: Source = None,
    name: Name = None,
    target: TargetOpt = "local",
    update: UpdateOpt = None,
    instance_type: InstanceType = DEFAULT_INSTANCE_TYPE,
    instance_count: InstanceCount = 1,
    serverless: ServerlessOpt = None,
    autoscale: AutoscaleOpt = None,
    max_rps: MaxRps = None,
    env: EnvOpt = [],  # noqa: B006 (typer's way of a repeatable option; never mutated)
    secret: SecretOpt = [],  # noqa: B006
    data_capture: DataCapture = None,
    startup_timeout: StartupTimeout = DEFAULT_STARTUP_TIMEOUT_S,
    region: Region = None,
    role_arn: RoleArn = None,
    ttl: Ttl = None,
    image: ImageOpt = None,
    base: Base = DEFAULT_BASE,
    engine: EngineOpt = None,
    port: Port = None,
    bucket: Bucket = None,
    log_retention: LogRetention = DEFAULT_LOG_RETENTION_DAYS,
    alarms: AlarmsOpt = True,
    notify: NotifyOpt = None,
    idle: IdleOpt = None,
    idle_action: IdleActionOpt = "notify",
    registry: RegistryOpt = "local",
    allow_unapproved: AllowUnapproved = False,
    canary: CanaryOpt = None,
    linear: LinearOpt = None,
    all_at_once: AllAtOnce = False,
    bake: BakeOpt = None,
    async_: AsyncOpt = False,
    async_output: AsyncOutputOpt = None,
    async_failure: AsyncFailureOpt = None,
    notify_success: NotifySuccessOpt = None,
    notify_error: NotifyErrorOpt = None,
    max_concurrent: MaxConcurrentOpt = None,
    invocation_timeout: InvocationTimeoutOpt = None,
    multi_model: MultiModelOpt = None,
    dry_run: DryRun = False,
    state: Path | None = STATE_OPTION,
) -> None:
    """Deploy a bundle, an image, a training run or a registered model version as an endpoint: `local` (the real
    image under Podman/Docker) or `sagemaker`. `--update NAME` replaces the model of a deployment; on sagemaker
    `--canary`, `--linear` or `--all-at-once` and `--bake` guard it (rolled back when an alarm fires)."""
    from shipyard.errors import SpecError

    if multi_model is not None:
        if source is not None:
            raise SpecError(f"--multi-model {multi_model} is the source: give no SOURCE ({source}) too")
        _deploy_multi_model(ctx, multi_model, name, update, dry_run, state)
        return
    if source is None:
        raise SpecError(
            "deploy needs a SOURCE: a bundle directory, a model.tar.gz, an image, run:NAME or GROUP/VERSION"
        )
    reporter = CliReporter()
    try:
        deployer = deployer_for(state, reporter)
        resolved = _resolve(deployer, source, registry, region, allow_unapproved)
        _run_deploy(deployer, resolved, name, update, dry_run, _given(ctx))
    except Exception as exc:
        reporter.done()
        _print_failure(exc)
        name_the_flag(exc)
        raise
    reporter.done()


def _deploy_multi_model(
    ctx: typer.Context, models: str, name: str | None, update: str | None, dry_run: bool, state: Path | None
) -> None:
    """``deploy --multi-model DIR|s3://…/``: the models' directory or prefix is the source (no registry lookup)."""
    from shipyard.errors import SpecError
    from shipyard.registry import Resolved

    if update:
        raise SpecError("--multi-model with --update: add models with `shipyard models add NAME BUNDLE` instead")
    if not models.startswith("s3://"):
        models = str(Path(models).resolve())  # `shipyard models add` finds the directory from anywhere
    reporter = CliReporter()
    try:
        deployer = deployer_for(state, reporter)
        _run_deploy(deployer, Resolved(models), name, None, dry_run, {**_given(ctx), "multi_model": True})
    except Exception as exc:
        reporter.done()
        _print_failure(exc)
        name_the_flag(exc, {**FLAGS, "multi_model": "--multi-model"})
        raise
    reporter.done()


def _resolve(deployer: Deployer, source: str, backend: str, region: str | None, allow_unapproved: bool) -> Resolved:
    """``run:NAME`` and ``GROUP/VERSION`` to the bundle or archive they name (a path or an image: as given)."""
    from shipyard.registry import Resolved, open_registry, resolve_source

    if Path(source).exists() or not (source.startswith("run:") or "/" in source):
        return Resolved(source)  # the registry is opened only for what may be one of its versions
    registry = open_registry(backend, deployer.settings, region=region)
    return resolve_source(source, settings=deployer.settings, registry=registry, allow_unapproved=allow_unapproved)


def _run_deploy(
    deployer: Deployer, resolved: Resolved, name: str | None, update: str | None, dry_run: bool, changes: dict[str, Any]
) -> None:
    """Deploy, update or plan; print the outcome."""
    from shipyard.deploy import DeployOptions
    from shipyard.errors import SpecError

    started = time.perf_counter()
    source = resolved.source
    if update:
        endpoint = _update(deployer, update, resolved, changes)
    else:
        _no_guard_without_update(changes)
        if not name:
            raise SpecError("deploy needs --name NAME (or --update NAME)")
        options = DeployOptions.parse(source, name, **changes)
        if dry_run:
            _print_plan(deployer.plan(options))
            return
        endpoint = deployer.deploy(options)
        _after(deployer, endpoint.name, resolved, "deploy", None)
    where = endpoint.url or f"{endpoint.record.region} (sagemaker-runtime)"
    out.print(
        f"[bold green]{endpoint.status}[/] {escape(endpoint.name)} on {endpoint.target}: {escape(where)} "
        f"in {time.perf_counter() - started:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    kept = endpoint.record.options
    asynchronous = kept is not None and kept.asynchronous is not None
    tip = "--async --data request.json --wait" if asynchronous else "--data request.json"
    out.print(f"try: shipyard invoke {endpoint.name} {tip}", highlight=False, markup=False, soft_wrap=True)


def _no_guard_without_update(changes: dict[str, Any]) -> None:
    """--canary/--linear/--all-at-once/--bake guard an update: refused on a first deploy, naming the flag."""
    from shipyard.errors import SpecError

    for option in ("canary", "linear", "all_at_once", "bake"):
        if option in changes:
            raise SpecError(
                f"{option} guards an update: use it with --update NAME (a first deploy has no old fleet to shift "
                "traffic from or roll back to)",
                option=option,
            )


def _update(deployer: Deployer, name: str, resolved: Resolved, changes: dict[str, Any]) -> Endpoint:
    """``--update NAME``; the versions involved get ``update`` in their history, or ``rollback`` when it failed and
    the deployment went back to what it served."""
    from shipyard.registry import HistoryEntry, note

    before = deployer.state.get(name)
    old_ref, old_registry = (before.model_version, before.model_registry) if before else (None, None)
    new_ref = resolved.version.ref if resolved.version else None
    try:
        endpoint = deployer.update(name, resolved.source, **changes)
    except Exception as exc:
        after = deployer.state.get(name)
        touched = after is not None and before is not None and after.updated_at != before.updated_at
        if after is not None and touched and after.status == "InService":  # rolled back: serving the previous again
            what = new_ref or resolved.source
            alarm = getattr(exc, "alarm", None)
            why = f"alarm {alarm} fired" if alarm else "the update failed"
            note(
                deployer.settings,
                old_ref,
                old_registry,
                HistoryEntry.now("rollback", name, after.target, f"the update to {what} failed: {_first_line(exc)}"),
            )
            note(
                deployer.settings,
                new_ref,
                resolved.registry,
                HistoryEntry.now("rollback", name, after.target, f"{why}; back on {old_ref or after.source}"),
            )
        raise
    if old_ref and old_ref != new_ref:
        note(
            deployer.settings,
            old_ref,
            old_registry,
            HistoryEntry.now("update", name, endpoint.target, f"replaced by {new_ref or resolved.source}"),
        )
    _after(deployer, name, resolved, "update", f"from {old_ref or (before.source if before else '?')}")
    return endpoint


def _after(deployer: Deployer, name: str, resolved: Resolved, action: str, detail: str | None) -> None:
    """The deployment remembers the version it serves; the version's history gets ``action``."""
    from shipyard.registry import HistoryEntry, note, remember

    record = remember(deployer, name, resolved)
    if resolved.version is not None:
        note(
            deployer.settings,
            resolved.version.ref,
            resolved.registry,
            HistoryEntry.now(action, name, record.target, detail),
        )


def name_the_flag(exc: Exception, flags: Mapping[str, str] | None = None) -> None:
    """An error about an option names it as the library does (``instance_count 0: ...``); here, as its flag
    (``flags``: option → flag, default deploy's)."""
    flags = FLAGS if flags is None else flags
    option = getattr(exc, "option", None)
    if not isinstance(option, str) or option not in flags or not exc.args:
        return
    flag, text = flags[option], str(exc.args[0])
    for word in (option, option.removesuffix("s")):
        if text.startswith(f"{word} "):
            exc.args = (flag + text[len(word) :], *exc.args[1:])
            return
    exc.args = (f"{text} ({flag})", *exc.args[1:])


def _given(ctx: typer.Context) -> dict[str, Any]:
    """The options the command line (or the environment) set, by their DeployOptions names.

    Only what was given: `--update` keeps every deployed setting not named, so a default must not count.
    """
    given: dict[str, Any] = {}
    for param, (option, _flag) in OPTIONS.items():
        source = ctx.get_parameter_source(param)
        value = ctx.params.get(param)
        if source is not None and source.name not in {"DEFAULT", "DEFAULT_MAP"} and value not in (None, []):
            given[option] = value
    return given


def _print_failure(exc: Exception) -> None:
    tail = getattr(exc, "log_tail", ())
    if tail:
        err.print("[bold]last log lines of the container:[/]")
        for line in tail[-20:]:
            err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def _print_plan(plan: Plan) -> None:
    table = Table(title=escape(f"plan: deploy {plan.deployment} to {plan.target} (dry run: nothing is created)"))
    table.add_column("resource")
    table.add_column("name", overflow="fold")  # a name is what the user looks up: wrapped, never cut
    table.add_column("detail", overflow="fold")
    table.add_column("est. $/month", justify="right")
    for item in plan.resources:
        cost = "–" if item.monthly_usd is None else f"{item.monthly_usd:,.2f}"
        table.add_row(Text(item.kind), Text(item.name), Text(item.detail), cost)
    table.caption = escape(f"total ≈ ${plan.monthly_usd:,.2f}/month · {plan.price_label}")
    out.print(table)
    for note in plan.notes:
        out.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)


def cleanup(
    name: str | None = typer.Argument(None, help="The deployment to delete."),
    all_: bool = typer.Option(False, "--all", help="Every deployment in the state file."),
    expired: bool = typer.Option(False, "--expired", help="Every deployment past its --ttl."),
    keep_artifacts: bool = typer.Option(False, "--keep-artifacts", help="Keep the ECR image and S3 model.tar.gz."),
    state: Path | None = STATE_OPTION,
) -> None:
    """Delete a deployment's resources in dependency order.

    Idempotent: what is already gone is no error, so a second run, or one on a name never deployed, ends
    with "nothing to clean up" (exit 0), and a cleanup cut short by an error finishes when run again.
    """
    from shipyard.errors import SpecError

    deployer = deployer_for(state, CliReporter())
    if sum([bool(name), all_, expired]) != 1:
        raise SpecError("cleanup takes one of: NAME, --all, --expired")
    names = [name] if name else (deployer.expired() if expired else [r.name for r in deployer.state.all()])
    if not names:
        which = "past its TTL" if expired else "in the state file"
        out.print(
            f"nothing to clean up: no deployment {which} ({deployer.state.path})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for each in names:
        record = deployer.state.get(each)
        report = deployer.cleanup(each, keep_artifacts=keep_artifacts)
        _print_cleanup(report, deployer.state)
        if record is not None and record.model_version:
            _note_cleanup(deployer, record.model_version, record.model_registry, each, record.target, report)


def _note_cleanup(
    deployer: Deployer, ref: str, backend: str | None, name: str, target: str, report: CleanupReport
) -> None:
    from shipyard.registry import HistoryEntry, note

    kept = f"; kept {', '.join(report.kept)}" if report.kept else ""
    detail = f"deleted {len(report.deleted)}, already gone {len(report.already_gone)}{kept}"
    note(deployer.settings, ref, backend, HistoryEntry.now("cleanup", name, target, detail))


def _print_cleanup(report: CleanupReport, state: StateStore) -> None:
    name = report.deployment
    state_path = state.path
    if not report.recorded:
        import difflib

        # the names to suggest are read only here: a name without a record removed nothing from the file
        close = difflib.get_close_matches(name, [r.name for r in state.all()], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        out.print(
            f"nothing to clean up: no deployment named {name!r} in {state_path} (never deployed, or cleaned up "
            f"already; one made on another machine is found by `shipyard status --reconcile --region R`){hint}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    parts = []
    if report.deleted:
        parts.append(f"deleted {len(report.deleted)} ({', '.join(report.deleted)})")
    if report.already_gone:
        parts.append(f"already gone {len(report.already_gone)} ({', '.join(report.already_gone)})")
    summary = "; ".join(parts) if report.deleted else "nothing to clean up" + (f": {parts[0]}" if parts else "")
    gone = "; removed from the state file" if report.forgotten else ""
    out.print(f"{name}: {summary}{gone}", highlight=False, markup=False, soft_wrap=True)
    for item in report.kept:
        out.print(f"  kept {item}", highlight=False, markup=False, soft_wrap=True)
    if not report.forgotten and report.kept:
        out.print(
            f"  `shipyard cleanup {name}` without --keep-artifacts deletes the rest", highlight=False, markup=False
        )


def logs(
    name: str = typer.Argument(..., help="The deployment."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many of the last lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (Ctrl-C stops)."),
    state: Path | None = STATE_OPTION,
) -> None:
    """The container's log (the engine's for local, CloudWatch Logs for sagemaker)."""
    deployer = deployer_for(state)
    try:
        for line in deployer.logs(name, lines=lines, follow=follow):
            print(line, flush=True)
    except KeyboardInterrupt:
        return


def _first_line(exc: Exception, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
