"""``shipyard register`` and ``shipyard models list|show|approve|reject``: the model registry (docs/registry.md);
``shipyard models add``: a model next to a multi-model endpoint's others (docs/hosting-modes.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

if TYPE_CHECKING:
    from shipyard.registry import ModelGroup, ModelVersion, Registry
    from shipyard.settings import Settings

__all__ = ["REGISTRY_OPTION", "register", "version_json"]

out = Console()
models = typer.Typer(help="The model registry: list, show, approve and reject versions.", no_args_is_help=True)

REGISTRY_OPTION = typer.Option(
    "local", "--registry", help="local (a file in Shipyard's home) or sagemaker (Model Package Groups)."
)
Region = Annotated[str | None, typer.Option("--region", help="sagemaker: the AWS region.")]


def register(app: typer.Typer) -> None:
    """Add ``register`` and the ``models`` group to ``app``."""
    app.command("register")(register_version)
    app.add_typer(models, name="models")


def _registry(backend: str, region: str | None = None, bucket: str | None = None) -> tuple[Registry, Settings]:
    from shipyard.registry import open_registry
    from shipyard.settings import Settings

    settings = Settings.from_env()
    return open_registry(backend, settings, region=region, bucket=bucket), settings


def version_json(version: ModelVersion, registry: Registry) -> dict[str, Any]:
    """One version as the commands' JSON shows it (docs/schemas/models-show.v1.json's ``version``)."""
    return {"ref": version.ref, "registry": registry.name, **version.to_json()}


def register_version(
    source: str = typer.Argument(..., help="A bundle folder, or run:NAME (a training run's bundle)."),
    group: str = typer.Option(..., "--group", help="The model group (made on first use)."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Evaluation metrics: {name: number} JSON."),
    description: str | None = typer.Option(None, "--description", help="What this version is."),
    image: str | None = typer.Option(None, "--image", help="The serving image (by digest); sagemaker needs one."),
    instance_type: list[str] = typer.Option([], "--instance-type", help="Instance types for inference (repeat)."),
    registry: str = REGISTRY_OPTION,
    region: Region = None,
    bucket: str | None = typer.Option(None, "--bucket", help="sagemaker: the S3 bucket for the model."),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Register a bundle or a training run as a new version of GROUP (PendingManualApproval)."""
    from shipyard.registry import register as new_version

    backend, settings = _registry(registry, region, bucket)
    version = new_version(
        backend, source, group, settings=settings, metrics=metrics, description=description, image=image,
        instance_types=instance_type or None,
    )  # fmt: skip
    if output is Output.json:
        print_json("register", {"version": version_json(version, backend)})
        return
    out.print(Text.assemble((version.ref, "bold"), f" {version.status}  ({backend.name}: {backend.where})"))
    out.print(f"approve it: shipyard models approve {version.ref}", highlight=False, markup=False)


@models.command("list")
def list_versions(
    group: str | None = typer.Argument(None, help="One group.", show_default="every group"),
    registry: str = REGISTRY_OPTION,
    region: Region = None,
    output: Output = OUTPUT_OPTION,
) -> None:
    """The groups and their versions: status, created, metrics, source."""
    backend, _ = _registry(registry, region)
    groups = [backend.group(group)] if group else backend.groups()
    if output is Output.json:
        print_json("models-list", {"registry": backend.name, "where": backend.where, "groups": _groups(groups)})
        return
    if not groups:
        out.print(f"no model groups in {backend.where}: `shipyard register BUNDLE --group NAME` makes one")
        return
    table = Table(title=f"models ({backend.name}: {backend.where})")
    for column in ("version", "status", "created", "metrics", "source", "deployments"):
        table.add_column(column, overflow="fold", no_wrap=column in {"version", "status", "created"})
    for each in groups:
        for version in each.versions:
            deployed = sum(1 for h in version.history if h.action == "deploy")
            table.add_row(
                Text(version.ref), Text(version.status), Text(version.created_at[:16].replace("T", " ")),
                Text(_metrics(version.metrics)), Text(version.source), str(deployed),
            )  # fmt: skip
    out.print(table)


def _groups(groups: list[ModelGroup]) -> list[dict[str, Any]]:
    return [
        {
            "name": g.name,
            "created_at": g.created_at,
            "description": g.description,
            "arn": g.arn,
            "versions": [{"ref": v.ref, **v.to_json()} for v in g.versions],
        }
        for g in groups
    ]


def _metrics(metrics: dict[str, float], limit: int = 3) -> str:
    shown = [f"{k}={v:.4g}" for k, v in list(metrics.items())[:limit]]
    return " ".join(shown) + (" …" if len(metrics) > limit else "") if shown else "–"


@models.command("show")
def show(
    ref: str = typer.Argument(..., help="GROUP or GROUP/VERSION."),
    registry: str = REGISTRY_OPTION,
    region: Region = None,
    output: Output = OUTPUT_OPTION,
) -> None:
    """A version's metadata and deployment history (a group: its versions)."""
    from shipyard.registry.model import parse_ref

    backend, _ = _registry(registry, region)
    name, number = parse_ref(ref)
    if number is None:
        found = backend.group(name)
        if output is Output.json:
            print_json("models-show", {"registry": backend.name, "group": _groups([found])[0], "version": None})
            return
        for version in found.versions:
            _print_version(version)
        return
    version = backend.version(name, number)
    if output is Output.json:
        print_json("models-show", {"registry": backend.name, "group": None, "version": version_json(version, backend)})
        return
    _print_version(version)


def _print_version(version: ModelVersion) -> None:
    rows: list[tuple[str, str | None]] = [
        ("status", version.status + (f" ({version.approval_reason})" if version.approval_reason else "")),
        ("created", version.created_at),
        ("description", version.description),
        ("source", version.source),
        ("model", version.model),
        ("image", version.image),
        ("run", " ".join(filter(None, (version.run.name, version.run.tracking_run_id))) if version.run else None),
        ("metrics", _metrics(version.metrics, limit=20) if version.metrics else None),
        ("hyperparameters", " ".join(f"{k}={v}" for k, v in version.hyperparameters.items()) or None),
        ("training data", " ".join(f"{k}={v}" for k, v in version.data.items()) or None),
        ("code", f"commit {version.code.get('commit')} dirty={version.code.get('dirty')}" if version.code else None),
        ("content types", ", ".join(version.content_types) or None),
        ("instance types", ", ".join(version.realtime_instance_types) or None),
    ]
    out.print(Text(version.ref, style="bold"))
    for label, value in rows:
        if value:
            out.print(Text.assemble(f"  {label}: ", value), soft_wrap=True)
    if not version.history:
        out.print("  history: never deployed", highlight=False)
        return
    table = Table(title=f"{version.ref}: deployment history")
    for column in ("time", "action", "deployment", "target", "detail"):
        table.add_column(column, overflow="fold")
    for entry in version.history:
        table.add_row(*(Text(x or "") for x in (entry.at, entry.action, entry.deployment, entry.target, entry.detail)))
    out.print(table)


def _set_status(ref: str, approve: bool, reason: str | None, registry: str, region: str | None, output: Output) -> None:
    from shipyard.registry import approve as approve_version
    from shipyard.registry import reject as reject_version
    from shipyard.registry import version_of

    backend, _ = _registry(registry, region)
    before = version_of(backend, ref).status
    version = (approve_version if approve else reject_version)(backend, ref, reason)
    if output is Output.json:
        document = {"previous_status": before, "version": version_json(version, backend)}
        print_json("models-approval", document)
        return
    out.print(Text.assemble((version.ref, "bold"), f": {before} → {version.status}"))


@models.command("approve")
def approve(
    ref: str = typer.Argument(..., help="GROUP/VERSION."),
    reason: str | None = typer.Option(None, "--reason", help="Why (SageMaker's ApprovalDescription)."),
    registry: str = REGISTRY_OPTION,
    region: Region = None,
    output: Output = OUTPUT_OPTION,
) -> None:
    """Approve a version: it may deploy (a Rejected one may be approved; SageMaker never rejects an Approved one)."""
    _set_status(ref, True, reason, registry, region, output)


@models.command("reject")
def reject(
    ref: str = typer.Argument(..., help="GROUP/VERSION."),
    reason: str = typer.Option(..., "--reason", help="Why (SageMaker's ApprovalDescription)."),
    registry: str = REGISTRY_OPTION,
    region: Region = None,
    output: Output = OUTPUT_OPTION,
) -> None:
    """Reject a version, with a reason (not an Approved one): it deploys only with --allow-unapproved."""
    _set_status(ref, False, reason, registry, region, output)


@models.command("add")
def add(
    name: str = typer.Argument(..., help="A multi-model deployment (shipyard deploy --multi-model)."),
    bundle: Path = typer.Argument(..., help="A bundle directory or a model.tar.gz."),
    as_name: str | None = typer.Option(
        None, "--as", help="The TargetModel it answers to.", show_default="BUNDLE's name + .tar.gz"
    ),
    state: Path | None = typer.Option(None, "--state", help="The state file.", show_default="$SHIPYARD_STATE"),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Pack BUNDLE as a model.tar.gz next to a multi-model endpoint's other models (its directory on local, its S3
    prefix on sagemaker); invoke it with `shipyard invoke NAME --target-model TARGET`."""
    from shipyard.cli.deploy import deployer_for
    from shipyard.deploy.multimodel import add_model

    target_model, where = add_model(deployer_for(state, None), name, bundle, as_name)
    if output == "json":
        print_json("models-add", {"deployment": name, "target_model": target_model, "location": where})
        return
    out.print(f"[bold green]added[/] {target_model} to {name}: {where}", highlight=False)
    out.print(f"invoke it with: shipyard invoke {name} --target-model {target_model} --data FILE", highlight=False)
