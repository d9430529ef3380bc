"""The Terraform form of a :class:`~.model.Stack`: HCL for the AWS provider.

``write(stack, directory)`` writes ``main.tf`` (the provider and every resource), ``variables.tf`` (one
variable per Stack parameter, and ``region``), ``imports.tf`` (an ``import`` block per live resource, in the id
format the provider's import docs give each type: ``terraform plan`` then shows the take-over without
recreating anything) and ``outputs.tf``. Each CloudFormation type maps to the provider's resources in
:mod:`.terraform_types`; a type without a mapping is an error naming it, never a silent drop.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.deploy.export import write_files
from shipyard.deploy.export.hcl import Block, Expr, render, string
from shipyard.deploy.export.model import Stack
from shipyard.deploy.export.terraform_types import MAPPING, convert, translator
from shipyard.deploy.export.terraform_values import Made, Translator, snake

__all__ = ["AWS_PROVIDER", "MAPPED", "TERRAFORM", "address", "made", "write"]

# import blocks need Terraform 1.5; the arguments written are those of provider 5.x, and aws_cloudwatch_event_rule's
# `state` (written for the idle rule) came in 5.27.0 (hashicorp/terraform-provider-aws#34510): older 5.x refuse it
AWS_PROVIDER = ">= 5.27"
TERRAFORM = ">= 1.5.0"
# each CloudFormation type's Terraform resources: the main one, then its companions
MAPPED = {cfn: (m.type, *m.companions) for cfn, m in MAPPING.items()}


def address(stack: Stack, logical_id: str) -> str:
    """The Terraform address of a Stack resource's main resource: ``aws_iam_role.role``."""
    return translator(stack).address(logical_id)


def made(stack: Stack) -> tuple[dict[str, list[Made]], set[str]]:
    """Per logical id, the Terraform resources written for it (the main one first); the data sources used."""
    values = translator(stack)
    written = {resource.logical_id: convert(values, resource) for resource in stack.resources}
    return written, values.uses


def write(stack: Stack, directory: Path) -> list[Path]:
    """Write the four files into ``directory`` (made if missing); the files written."""
    written, uses = made(stack)
    values = translator(stack)
    outputs = _outputs(stack, values)
    files = {
        "main.tf": _main(stack, written, uses | values.uses),
        "variables.tf": _variables(stack),
        "imports.tf": _imports(stack, written),
        "outputs.tf": outputs,
    }
    return write_files(directory, files)


def _main(stack: Stack, written: dict[str, list[Made]], uses: set[str]) -> str:
    terraform = Block("terraform")
    terraform.set("required_version", TERRAFORM)
    providers = Block("required_providers")
    providers.set("aws", {"source": "hashicorp/aws", "version": AWS_PROVIDER})
    terraform.add(providers)
    provider = Block("provider", ("aws",))
    provider.set("region", Expr("var.region"))
    parts = [
        f"# The Shipyard deployment {stack.deployment} ({stack.region}, account {stack.account}), written by",
        "# `shipyard export --format terraform`. imports.tf attaches every resource to the live one: run",
        "# `terraform plan` (it should show imports and no replacement), then `terraform apply`, then",
        f"# `shipyard forget {stack.deployment}` so Shipyard stops managing them.",
        "",
        render(terraform),
        "",
        render(provider),
    ]
    for source in sorted(uses):
        parts += ["", render(Block("data", (source, "current")))]
    for resource in stack.resources:
        title = f"# -- {resource.logical_id}: {resource.type} (live: {resource.physical_id})"
        parts += ["", title, *(f"# {line}" for line in resource.comment.splitlines())]
        for i, one in enumerate(written[resource.logical_id]):
            if i:
                parts.append("")
            parts.append(render(one.block))
    return "\n".join(parts) + "\n"


def _variables(stack: Stack) -> str:
    region = Block("variable", ("region",))
    region.set("type", Expr("string"))
    region.set("default", stack.region)
    region.set("description", "the region of every resource (the deployment's)")
    blocks = [region]
    for parameter in stack.parameters:
        variable = Block("variable", (snake(parameter.name),))
        variable.set("type", Expr("number" if parameter.type == "Number" else "string"))
        variable.set("default", parameter.default)
        variable.set("description", parameter.description)
        if parameter.allowed:
            check = Block("validation")
            options = "[" + ", ".join(string(a) for a in parameter.allowed) + "]"
            check.set("condition", Expr(f"contains({options}, var.{snake(parameter.name)})"))
            check.set("error_message", f"{parameter.name} is one of {', '.join(parameter.allowed)}.")
            variable.add(check)
        blocks.append(variable)
    return "\n\n".join(render(b) for b in blocks) + "\n"


def _imports(stack: Stack, written: dict[str, list[Made]]) -> str:
    parts = [
        "# The live resources these blocks attach (Terraform 1.5+): `terraform plan` shows each import; after",
        "# `terraform apply` the state holds them and these blocks may go.",
    ]
    for resource in stack.resources:
        for one in written[resource.logical_id]:
            if one.import_id is None:
                parts += ["", f"# {one.address}: not imported ({one.note})"]
                continue
            block = Block("import")
            block.set("to", Expr(one.address))
            block.set("id", one.import_id)
            parts += ["", render(block)]
    return "\n".join(parts) + "\n"


def _outputs(stack: Stack, values: Translator) -> str:
    blocks = []
    for name, item in stack.outputs.items():
        output = Block("output", (snake(name),))
        output.set("value", values.hcl(item))
        blocks.append(output)
    return "\n\n".join(render(b) for b in blocks) + ("\n" if blocks else "")
