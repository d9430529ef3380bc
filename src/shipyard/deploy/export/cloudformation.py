"""The CloudFormation form of a :class:`~.model.Stack`: the template as a document, and :func:`write` of it.

:func:`write` puts in the output directory:

- ``template.yaml``: the whole stack (long-form intrinsics, ``DeletionPolicy: Retain`` on every resource);
- ``import-template.yaml`` and ``resources-to-import.json``: what resource import takes over the live resources
  with (``aws cloudformation create-change-set --change-set-type IMPORT --resources-to-import
  file://resources-to-import.json``). An import may add no Outputs, and every resource of its template must be
  imported, so this template is ``template.yaml`` without its Outputs and without what cannot be imported (an
  unconfirmed email subscription); a stack update with ``template.yaml`` adds those afterwards;
- ``README.md``: the commands, in order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shipyard.deploy.export import write_files
from shipyard.deploy.export.model import GetAtt, Ref, Stack, Sub
from shipyard.units import format_utc

__all__ = ["import_template", "resolve", "resources_to_import", "template", "write"]

FORMAT_VERSION = "2010-09-09"


def resolve(value: Any) -> Any:
    """``value`` with its intrinsics in CloudFormation's long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``)."""
    if isinstance(value, Ref):
        return {"Ref": value.name}
    if isinstance(value, GetAtt):
        return {"Fn::GetAtt": [value.logical_id, value.attribute]}
    if isinstance(value, Sub):
        return {"Fn::Sub": value.template}
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item) for item in value]
    return value


def template(stack: Stack) -> dict[str, Any]:
    """The template: parameters, resources (each kept when the stack goes: ``DeletionPolicy: Retain``, which
    resource import requires), outputs."""
    parameters: dict[str, Any] = {}
    for parameter in stack.parameters:
        spec: dict[str, Any] = {
            "Type": parameter.type,
            "Default": parameter.default,
            "Description": parameter.description,
        }
        if parameter.allowed:
            spec["AllowedValues"] = list(parameter.allowed)
        parameters[parameter.name] = spec
    resources: dict[str, Any] = {}
    for resource in stack.resources:
        body: dict[str, Any] = {"Type": resource.type}
        if resource.depends_on:
            body["DependsOn"] = list(resource.depends_on)
        body["DeletionPolicy"] = "Retain"
        body["UpdateReplacePolicy"] = "Retain"
        body["Properties"] = resolve(resource.properties)
        resources[resource.logical_id] = body
    document: dict[str, Any] = {"AWSTemplateFormatVersion": FORMAT_VERSION, "Description": stack.description}
    if parameters:
        document["Parameters"] = parameters
    document["Resources"] = resources
    if stack.outputs:
        document["Outputs"] = {name: {"Value": resolve(value)} for name, value in stack.outputs.items()}
    return document


def resources_to_import(stack: Stack) -> list[dict[str, Any]]:
    """``--resources-to-import``: ResourceType, LogicalResourceId and ResourceIdentifier of each resource that
    has an import identifier (in the stack's order)."""
    return [
        {"ResourceType": r.type, "LogicalResourceId": r.logical_id, "ResourceIdentifier": dict(r.import_identifier)}
        for r in stack.resources
        if r.import_identifier
    ]


def import_template(stack: Stack) -> dict[str, Any]:
    """The template of the IMPORT change set: the importable resources only, no Outputs (an import adds none)."""
    document = template(stack)
    document.pop("Outputs", None)
    importable = {r.logical_id for r in stack.resources if r.import_identifier}
    document["Resources"] = {k: v for k, v in document["Resources"].items() if k in importable}
    for body in document["Resources"].values():
        if "DependsOn" in body:
            body["DependsOn"] = [d for d in body["DependsOn"] if d in importable]
            if not body["DependsOn"]:
                del body["DependsOn"]
    return document


def write(stack: Stack, directory: Path) -> list[Path]:
    """Write the stack's CloudFormation files into ``directory`` (made if missing); the files written."""
    stack_name = f"shipyard-{stack.deployment}"
    today = format_utc(datetime.now(UTC))
    header = (
        f"# CloudFormation template of the Shipyard deployment {stack.deployment} ({stack.region}, account "
        f"{stack.account}),\n"
        f"# exported by `shipyard export {stack.deployment} --format cloudformation` on {today}.\n"
        "# It describes the live resources exactly (the image pinned by digest, the model artifact by its S3 URI).\n"
        "# Take them over without recreating them: resource import with import-template.yaml and\n"
        "# resources-to-import.json (README.md has the commands), then `shipyard forget "
        f"{stack.deployment}`.\n"
    )
    files = {
        "template.yaml": header + _yaml(template(stack)),
        "import-template.yaml": header.replace("CloudFormation template", "Resource-import template", 1)
        + _yaml(import_template(stack)),
        "resources-to-import.json": json.dumps(resources_to_import(stack), indent=2) + "\n",
        "README.md": _readme(stack, stack_name),
    }
    return write_files(directory, files)


def _yaml(document: dict[str, Any]) -> str:
    return str(yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120))


def _readme(stack: Stack, stack_name: str) -> str:
    parameters = " ".join(f"{p.name}={p.default}" for p in stack.parameters)
    left_out = [r for r in stack.resources if not r.import_identifier]
    lines = [
        f"# {stack.deployment} as a CloudFormation stack",
        "",
        f"Exported by `shipyard export {stack.deployment} --format cloudformation` from {stack.region}: "
        f"{len(stack.resources)} resources, {len(stack.resources) - len(left_out)} of them importable.",
        "",
        "## Take over the live resources (nothing is recreated)",
        "",
        "```sh",
        f"aws cloudformation create-change-set --region {stack.region} --stack-name {stack_name} \\",
        f"  --change-set-name import-{stack.deployment} --change-set-type IMPORT \\",
        "  --template-body file://import-template.yaml --resources-to-import file://resources-to-import.json \\",
        "  --capabilities CAPABILITY_NAMED_IAM",
        f"aws cloudformation wait change-set-create-complete --region {stack.region} --stack-name {stack_name} "
        f"--change-set-name import-{stack.deployment}",
        f"aws cloudformation execute-change-set --region {stack.region} --stack-name {stack_name} "
        f"--change-set-name import-{stack.deployment}",
        f"aws cloudformation wait stack-import-complete --region {stack.region} --stack-name {stack_name}",
        "# then the whole template: its Outputs, and what an import cannot take over",
        f"aws cloudformation deploy --region {stack.region} --stack-name {stack_name} --template-file template.yaml "
        "--capabilities CAPABILITY_NAMED_IAM",
        f"shipyard forget {stack.deployment} --yes   # Shipyard stops managing it; nothing is deleted",
        "```",
        "",
    ]
    if left_out:
        lines += ["Not imported (the stack update creates them):", ""]
        lines += [f"- {r.logical_id} ({r.type}): {r.comment or 'no import identifier'}" for r in left_out]
        lines.append("")
    lines += [
        "## Or a second copy under another name (or in another region)",
        "",
        "```sh",
        "aws cloudformation deploy --region REGION --stack-name shipyard-OTHER --template-file template.yaml \\",
        "  --capabilities CAPABILITY_NAMED_IAM --parameter-overrides DeploymentName=OTHER",
        "```",
        "",
        "The copy runs the same image (pinned by digest in this account's ECR) and model artifact (its S3 URI); in",
        "another account or region, copy both there and edit `PrimaryContainer` first.",
        "",
        f"Parameters and their defaults: {parameters}.",
        "",
    ]
    return "\n".join(lines)
