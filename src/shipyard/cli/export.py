"""``shipyard export NAME --format cloudformation|cdk|terraform -o DIR`` and ``shipyard forget NAME``.

``export`` reads what a sagemaker deployment runs on AWS (read calls only) and writes it as infrastructure as
code (docs/export.md); it prints the files written and the next step: taking the live resources over (resource
import, ``cdk import``, ``terraform import`` blocks), then ``shipyard forget NAME``, which drops the record and
Shipyard's tags and deletes nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from shipyard.cli.deploy import STATE_OPTION, CliReporter, deployer_for
from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

__all__ = ["export", "forget", "next_step", "register"]

out = Console()

_NEXT = {
    "cloudformation": "take the live resources over without recreating them: the commands are in {dir}/README.md "
    "(create-change-set --change-set-type IMPORT with import-template.yaml and resources-to-import.json)",
    "cdk": "take the live resources over without recreating them: `cdk import` in {dir} (its README.md)",
    "terraform": "take the live resources over without recreating them: `terraform init && terraform plan` in "
    "{dir} (the import blocks adopt them; the plan must show no change), then `terraform apply`",
}


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("forget")(forget)


def next_step(name: str, format: str, directory: Path) -> str:
    """What to do after an export, in words (the same in the table and the JSON document)."""
    return _NEXT[format].format(dir=directory) + f"; then `shipyard forget {name}` so Shipyard stops managing it"


def export(
    name: str = typer.Argument(..., help="The (sagemaker) deployment to export."),
    format: str = typer.Option(..., "--format", help="cloudformation, cdk or terraform."),
    directory: Path = typer.Option(..., "-o", "--output-dir", help="Where to write the files (made if missing)."),
    output: Output = OUTPUT_OPTION,
    state: Path | None = STATE_OPTION,
) -> None:
    """Write what a deployment runs on AWS as CloudFormation, a CDK app or Terraform (read calls only)."""
    deployer = deployer_for(state, CliReporter())
    files = deployer.export(name, format, directory)
    step = next_step(name, format, directory)
    if output is Output.json:
        print_json(
            "export",
            {"name": name, "format": format, "directory": str(directory), "files": [str(f) for f in files],
             "next": step},
        )  # fmt: skip
        return
    out.print(f"exported {name} as {format}:", highlight=False, markup=False)
    for path in files:
        out.print(f"  {path}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"next: {step}", highlight=False, markup=False, soft_wrap=True)


def forget(
    name: str = typer.Argument(..., help="The deployment Shipyard stops managing."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask first."),
    state: Path | None = STATE_OPTION,
) -> None:
    """Stop managing a deployment without deleting anything (after its export is imported elsewhere).

    Its record leaves the state file and Shipyard's tags (shipyard:deployment, shipyard:expires-at) leave its
    resources, so `status --reconcile` does not take it back and `cleanup` can no longer delete it.
    """
    deployer = deployer_for(state, CliReporter())
    record = deployer.record(name)
    if not yes and not typer.confirm(
        f"forget {name}: Shipyard stops managing it (its {len(record.resources)} resources keep running, without "
        "Shipyard's tags)?",
        default=False,
        err=True,
    ):
        raise typer.Exit(1)
    untagged = deployer.forget(name)
    out.print(
        f"forgot {name}: its record is gone from {deployer.state.path} and Shipyard's tags from {len(untagged)} "
        "resources; nothing was deleted (what now manages them keeps them)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
