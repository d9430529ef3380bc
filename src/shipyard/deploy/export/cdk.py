"""The CDK form of a :class:`~.model.Stack`: a Python app on aws-cdk-lib's L1 constructs (``CfnModel``, ...).

``write(stack, directory)`` writes ``app.py``, ``cdk.json`` and ``requirements.txt``. The app synthesizes to the
CloudFormation writer's template: each resource keeps its logical id (``override_logical_id``, so ``cdk import``
attaches it to the live resource) and is retained when the stack goes (``RemovalPolicy.RETAIN``: DeletionPolicy
and UpdateReplacePolicy ``Retain``); the synthesizer adds no bootstrap parameter or rule and the app no
``CDKMetadata``. Which properties are structs (written as the struct's class with its snake_case fields:
``aws_sagemaker.CfnModel.ContainerDefinitionProperty(image=...)``; jsii takes a plain dict for a struct only where
it is a property's whole value, not inside a list) and which are Json (policy documents, event patterns: written
as they are) comes from :mod:`.cdk_shapes`, generated from the jsii classes' type hints, so this module writes
text and never imports aws_cdk. References are the constructs' own (``role.attr_arn``, ``topic.ref``,
``deployment_name.value_as_string``), a Sub is ``Fn.sub``.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path
from typing import Any

from shipyard.deploy.export import write_files
from shipyard.deploy.export.cdk_shapes import CDK_VERSION, RESOURCES, STRUCTS
from shipyard.deploy.export.model import GetAtt, Ref, Resource, Stack, Sub
from shipyard.deploy.export.references import in_order
from shipyard.errors import ShipyardError

__all__ = ["CDK_RANGE", "CONSTRUCTS_RANGE", "stack_name", "write"]

CDK_RANGE = f">={CDK_VERSION},<3"
CONSTRUCTS_RANGE = ">=10.0.0,<11"
_PSEUDO = {"AWS::Region": "Aws.REGION", "AWS::AccountId": "Aws.ACCOUNT_ID", "AWS::Partition": "Aws.PARTITION",
           "AWS::StackName": "Aws.STACK_NAME", "AWS::URLSuffix": "Aws.URL_SUFFIX"}  # fmt: skip
_INDENT = "    "


def stack_name(stack: Stack) -> str:
    """The CDK stack's name (and CloudFormation's): ``shipyard-NAME``."""
    return re.sub(r"[^A-Za-z0-9-]", "-", f"shipyard-{stack.deployment}")


def write(stack: Stack, directory: Path) -> list[Path]:
    """Write the app into ``directory`` (made if missing); the files written."""
    files = {
        "app.py": _App(stack).render(),
        "cdk.json": json.dumps(
            {
                "app": "python3 app.py",
                # the CLI's own settings too: `cdk synth` adds no aws:cdk:path metadata and no CDKMetadata
                "pathMetadata": False,
                "versionReporting": False,
                "context": {"aws:cdk:enable-path-metadata": False, "aws:cdk:version-reporting": False},
            },
            indent=2,
        )
        + "\n",
        "requirements.txt": f"aws-cdk-lib{CDK_RANGE}\nconstructs{CONSTRUCTS_RANGE}\n",
    }
    return write_files(directory, files)


def _snake(name: str) -> str:
    """``AlarmModelLatency`` → ``alarm_model_latency``, ``InstanceCount`` → ``instance_count``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    snake = re.sub(r"[^a-z0-9_]", "_", spaced.lower()).strip("_") or "value"
    if snake[0].isdigit():
        snake = f"r_{snake}"
    return f"{snake}_" if keyword.iskeyword(snake) else snake


def _field(fields: dict[str, str], cfn_name: str, where: str) -> str:
    """The snake_case field that takes CloudFormation's ``cfn_name`` (``RoleARN`` → ``role_arn``)."""
    wanted = cfn_name.lower()
    for field in fields:
        if field.replace("_", "") == wanted:
            return field
    raise ShipyardError(
        f"the CDK export cannot write {cfn_name} of {where}: aws-cdk-lib {CDK_VERSION} has no such property "
        "(export it as CloudFormation instead, or report it)"
    )


class _App:
    """The text of app.py: the parameters, then each resource in the Stack's order."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.names: dict[str, str] = {}  # logical id (or parameter name) → Python variable
        self.parameter_types = {p.name: p.type for p in stack.parameters}
        taken = {"self", "app", "stack", "scope"}
        for name in [p.name for p in stack.parameters] + [r.logical_id for r in stack.resources]:
            variable = _snake(name)
            while variable in taken or variable in _MODULE_NAMES:
                variable += "_"
            taken.add(variable)
            self.names[name] = variable
        self.modules: set[str] = set()
        self.uses_json = False

    # -- values ----------------------------------------------------------------------------------------
    def value(self, value: Any, shape: str, where: str, depth: int) -> str:
        """``value`` (CloudFormation's shape) as Python for a property of ``shape``."""
        if isinstance(value, Ref | GetAtt | Sub):
            return self.intrinsic(value)
        if shape.startswith("S:") and isinstance(value, dict):
            struct = shape[2:]  # "aws_iam.CfnRole.PolicyProperty", "CfnTag"
            fields = STRUCTS[struct]
            if "." in struct:
                self.modules.add(struct.split(".", 1)[0])
            items = []
            for key, item in value.items():
                field = _field(fields, key, f"{where}.{struct.rsplit('.', 1)[-1]}")
                items.append((field, self.value(item, fields[field], f"{where}.{key}", depth + 1)))
            return _call(struct, items, depth)
        if shape.startswith("L:") and isinstance(value, list | tuple):
            return _list([self.value(item, shape[2:], where, depth + 1) for item in value], depth)
        if shape.startswith("M:") and isinstance(value, dict):
            return _dict(
                [(json.dumps(str(k)), self.value(v, shape[2:], where, depth + 1)) for k, v in value.items()], depth
            )
        return self.plain(value, depth)

    def plain(self, value: Any, depth: int) -> str:
        """A Json value (or a plain one) as it is, intrinsics inside it included."""
        if isinstance(value, Ref | GetAtt | Sub):
            return self.intrinsic(value)
        if isinstance(value, dict):
            return _dict([(json.dumps(str(k)), self.plain(v, depth + 1)) for k, v in value.items()], depth)
        if isinstance(value, list | tuple):
            return _list([self.plain(item, depth + 1) for item in value], depth)
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, int | float):
            return repr(value)
        return self.text(str(value), depth)

    def text(self, text: str, depth: int) -> str:
        """A string; a JSON text (a dashboard body, a lifecycle policy) as ``json.dumps`` of its document, when
        that gives back exactly the same text, so the app reads as the document and synthesizes the string."""
        found = _json_text(text)
        if found is None:
            return json.dumps(text, ensure_ascii=False)
        document, arguments = found
        self.uses_json = True
        return f"json.dumps({self.plain(document, depth)}{arguments})"

    def intrinsic(self, value: Ref | GetAtt | Sub) -> str:
        if isinstance(value, Sub):
            return f"Fn.sub({self.text(value.template, 1)})"
        if isinstance(value, GetAtt):
            target = self._resource(value.logical_id, f"GetAtt {value.logical_id}.{value.attribute}")
            attr = "attr_" + _snake(value.attribute.replace(".", "_"))
            if attr in RESOURCES[target.type]["attrs"]:
                return f"{self.names[value.logical_id]}.{attr}"
            return f"Fn.get_att({json.dumps(value.logical_id)}, {json.dumps(value.attribute)}).to_string()"
        if value.name in _PSEUDO:
            return _PSEUDO[value.name]
        if value.name in self.parameter_types:
            kind = "value_as_number" if self.parameter_types[value.name] == "Number" else "value_as_string"
            return f"{self.names[value.name]}.{kind}"
        self._resource(value.name, f"Ref {value.name}")
        return f"{self.names[value.name]}.ref"

    def _resource(self, logical_id: str, what: str) -> Resource:
        try:
            return self.stack.resource(logical_id)
        except KeyError:
            raise ShipyardError(f"the export's {what} names no resource of the stack") from None

    # -- statements ------------------------------------------------------------------------------------
    def parameter_lines(self) -> list[str]:
        lines = []
        for parameter in self.stack.parameters:
            args = [
                f"type={json.dumps(parameter.type)}",
                f"default={self.plain(parameter.default, 3)}",
                f"description={json.dumps(parameter.description, ensure_ascii=False)}",
            ]
            if parameter.allowed:
                args.append(f"allowed_values={_list([json.dumps(a) for a in parameter.allowed], 3)}")
            lines.append(f"{self.names[parameter.name]} = CfnParameter(")
            lines += [f"{_INDENT}self,", f"{_INDENT}{json.dumps(parameter.name)},"]
            lines += [f"{_INDENT}{arg}," for arg in args]
            lines.append(")")
        return lines

    def resource_lines(self, resource: Resource) -> list[str]:
        if resource.type not in RESOURCES:
            raise ShipyardError(
                f"the CDK export has no construct for {resource.type} ({resource.logical_id}): "
                "export it as CloudFormation instead, or report it"
            )
        spec = RESOURCES[resource.type]
        self.modules.add(spec["module"])
        props: dict[str, str] = spec["props"]
        variable = self.names[resource.logical_id]
        lines = [f"# {line}" for line in resource.comment.splitlines()]
        lines += [f"{variable} = {spec['module']}.{spec['class']}(", f"{_INDENT}self,"]
        lines.append(f"{_INDENT}{json.dumps(resource.logical_id)},")
        for key, item in resource.properties.items():
            field = _field(props, key, resource.type)
            lines.append(f"{_INDENT}{field}={self.value(item, props[field], resource.type, 1)},")
        lines.append(")")
        lines.append(f"{variable}.override_logical_id({json.dumps(resource.logical_id)})")
        lines.append(f"{variable}.apply_removal_policy(RemovalPolicy.RETAIN)")
        for other in resource.depends_on:
            self._resource(other, f"DependsOn {other}")
            lines.append(f"{variable}.add_resource_dependency({self.names[other]})")
        return lines

    def output_lines(self) -> list[str]:
        lines = []
        for name, value in self.stack.outputs.items():
            variable = f"output_{_snake(name)}"
            lines.append(f"{variable} = CfnOutput(self, {json.dumps(name)}, value={self.plain(value, 2)})")
            lines.append(f"{variable}.override_logical_id({json.dumps(name)})")
        return lines

    def render(self) -> str:
        stack = self.stack
        body: list[str] = []
        if stack.parameters:
            body += ["# -- parameters: what a team changes without editing the resources", *self.parameter_lines()]
        for resource in in_order(stack.resources):
            title = f"# -- {resource.logical_id}: {resource.type} (live: {resource.physical_id})"
            body += ["", title, *self.resource_lines(resource)]
        if stack.outputs:
            body += ["", "# -- outputs", *self.output_lines()]
        head = [
            f'"""The Shipyard deployment {stack.deployment} ({stack.region}, account {stack.account}) as a CDK app.',
            "",
            "Written by `shipyard export`. Every resource keeps the logical id of the exported CloudFormation",
            "template and is retained when the stack goes, so `cdk import` takes over the live resources without",
            "recreating them; Shipyard stops managing them after `shipyard forget " + f"{stack.deployment}`.",
            "",
            "    pip install -r requirements.txt",
            f"    cdk synth                      # the region: {stack.region}; another: cdk synth -c region=...",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            *(["import json"] if self.uses_json else []),
            "from typing import Any",
            "",
            "from aws_cdk import (",
            f"{_INDENT}App,",
            f"{_INDENT}Aws,",
            f"{_INDENT}CfnOutput,",
            f"{_INDENT}CfnTag,",
            f"{_INDENT}CfnParameter,",
            f"{_INDENT}DefaultStackSynthesizer,",
            f"{_INDENT}Environment,",
            f"{_INDENT}Fn,",
            f"{_INDENT}RemovalPolicy,",
            f"{_INDENT}Stack,",
            ")",
            *_import(sorted(self.modules)),
            "from aws_cdk import cx_api",
            "from constructs import Construct",
            "",
            f"STACK_NAME = {json.dumps(stack_name(stack))}",
            f"REGION = {json.dumps(stack.region)}",
            f"DESCRIPTION = {json.dumps(stack.description, ensure_ascii=False)}",
            "",
            "",
            "class ShipyardStack(Stack):",
            f"{_INDENT}def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:",
            f"{_INDENT * 2}super().__init__(scope, construct_id, **kwargs)",
            f'{_INDENT * 2}self.template_options.template_format_version = "2010-09-09"',
            "",
        ]
        tail = [
            "",
            "",
            "def main(outdir: str | None = None) -> cx_api.CloudAssembly:",
            f'{_INDENT}"""Synthesize the app (the CDK CLI runs this file; tests call it with an outdir)."""',
            f"{_INDENT}app = App(analytics_reporting=False, outdir=outdir)",
            f'{_INDENT}region = app.node.try_get_context("region") or REGION',
            f"{_INDENT}ShipyardStack(",
            f"{_INDENT * 2}app,",
            f"{_INDENT * 2}STACK_NAME,",
            f"{_INDENT * 2}description=DESCRIPTION,",
            f"{_INDENT * 2}env=Environment(region=region),",
            f"{_INDENT * 2}# no BootstrapVersion parameter or rule: the template is exactly the exported one",
            f"{_INDENT * 2}synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),",
            f"{_INDENT})",
            f"{_INDENT}return app.synth()",
            "",
            "",
            'if __name__ == "__main__":',
            f"{_INDENT}main()",
            "",
        ]
        indented = [f"{_INDENT * 2}{line}" if line else "" for line in "\n".join(body).split("\n")]
        return "\n".join([*head, *indented, *tail])


_MODULE_NAMES = {spec["module"] for spec in RESOURCES.values()} | {
    "App", "Aws", "CfnOutput", "CfnTag", "CfnParameter", "DefaultStackSynthesizer", "Environment", "Fn",
    "RemovalPolicy", "Stack", "Construct", "main", "annotations", "cx_api", "Any",
}  # fmt: skip


def _json_text(text: str) -> tuple[Any, str] | None:
    """``(document, the json.dumps arguments that write it back)`` for a JSON text of an object or array that
    ``json.dumps`` writes back character for character; None for any other string."""
    if not text.startswith(("{", "[")):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    for separators, spelled in (((", ", ": "), ""), ((",", ":"), ', separators=(",", ":")')):
        for ascii_only, more in ((True, ""), (False, ", ensure_ascii=False")):
            if json.dumps(document, separators=separators, ensure_ascii=ascii_only) == text:
                return document, spelled + more
    return None


def _import(modules: list[str]) -> list[str]:
    if not modules:
        return []
    return ["from aws_cdk import (", *(f"{_INDENT}{module}," for module in modules), ")"]


def _call(name: str, items: list[tuple[str, str]], depth: int) -> str:
    """A struct: ``aws_iam.CfnRole.PolicyProperty(policy_name=..., ...)`` (jsii converts a dict given for a struct
    only where the struct is a property's whole value, not inside a list: the struct's class works everywhere)."""
    flat = f"{name}(" + ", ".join(f"{k}={v}" for k, v in items) + ")"
    if len(flat) + 4 * (depth + 3) <= 110 and "\n" not in flat:
        return flat
    pad = _INDENT * (depth + 1)
    return f"{name}(\n" + "".join(f"{pad}{k}={v},\n" for k, v in items) + _INDENT * depth + ")"


def _dict(items: list[tuple[str, str]], depth: int) -> str:
    if not items:
        return "{}"
    flat = "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if len(flat) + 4 * (depth + 3) <= 110 and "\n" not in flat:
        return flat
    pad = _INDENT * (depth + 1)
    return "{\n" + "".join(f"{pad}{k}: {v},\n" for k, v in items) + _INDENT * depth + "}"


def _list(items: list[str], depth: int) -> str:
    if not items:
        return "[]"
    flat = "[" + ", ".join(items) + "]"
    if len(flat) + 4 * (depth + 3) <= 110 and "\n" not in flat:
        return flat
    pad = _INDENT * (depth + 1)
    return "[\n" + "".join(f"{pad}{item},\n" for item in items) + _INDENT * depth + "]"
