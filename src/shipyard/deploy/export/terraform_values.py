"""How a Stack's values read in Terraform: ``Ref``/``GetAtt`` → ``aws_x.y.attr`` / ``var.x`` / ``data.x.y.z``,
``Sub`` → an interpolated string, JSON documents → ``jsonencode(...)``, CloudFormation's property shapes → the
provider's (snake_case arguments, a struct as a nested block, a list of structs as repeated blocks, ``Tags`` as a
map); and the live values the ``import`` ids are made of."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.deploy.export.hcl import Block, Call, Expr, string
from shipyard.deploy.export.model import GetAtt, Ref, Resource, Stack, Sub
from shipyard.deploy.export.references import SUB_NAME
from shipyard.errors import ShipyardError

__all__ = ["Made", "Mapping", "Translator", "ident", "mapping_of", "pick", "snake"]

_MAPS = {"Environment", "RequestParameters", "ResponseParameters", "RequestTemplates", "ResponseTemplates",
         "RequestModels", "ResponseModels", "Variables", "InputPathsMap"}  # fmt: skip
_PSEUDO = {
    "AWS::Region": "var.region",
    "AWS::AccountId": "data.aws_caller_identity.current.account_id",
    "AWS::Partition": "data.aws_partition.current.partition",
    "AWS::URLSuffix": "data.aws_partition.current.dns_suffix",
}


def snake(name: str) -> str:
    """CloudFormation's ``MemorySizeInMB`` → ``memory_size_in_mb``; a logical id → a Terraform name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^a-z0-9_]", "_", spaced.lower()).strip("_")


@dataclass(frozen=True)
class Made:
    """One Terraform resource written for a Stack resource, and the id ``import`` attaches it with."""

    block: Block
    import_id: str | None  # None: not importable (said in a comment)
    note: str = ""

    @property
    def address(self) -> str:
        return f"{self.block.labels[0]}.{self.block.labels[1]}"


@dataclass(frozen=True)
class Mapping:
    """A CloudFormation type's main Terraform resource, what its ``Ref`` and ``GetAtt`` read there, and the
    function writing it (and its companions: inline policies, targets, responses)."""

    type: str
    ref: str
    attrs: dict[str, str]
    convert: Callable[[Translator, Resource], list[Made]]
    companions: tuple[str, ...] = ()


@dataclass
class Translator:
    """Turns a Stack's values into HCL against the names the writer gives its resources."""

    stack: Stack
    table: dict[str, Mapping]  # CloudFormation type → its Terraform mapping (terraform_types.MAPPING)
    uses: set[str] = field(default_factory=set)  # the data sources used ("aws_caller_identity", "aws_partition")

    def name(self, logical_id: str) -> str:
        """The Terraform name of a logical id: ``AlarmInvocation4XXErrors`` → ``alarm_invocation4xx_errors``."""
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])", "_", logical_id)
        return re.sub(r"[^a-z0-9_]", "_", spaced.lower()).strip("_")

    def address(self, logical_id: str) -> str:
        resource = self.resource(logical_id)
        return f"{mapping_of(self.table, resource).type}.{self.name(logical_id)}"

    def resource(self, logical_id: str) -> Resource:
        try:
            return self.stack.resource(logical_id)
        except KeyError:
            raise ShipyardError(
                f"the Terraform export: a reference names {logical_id}, no resource of the stack"
            ) from None

    # -- references ------------------------------------------------------------------------------------
    def reference(self, name: str, attribute: str | None) -> str:
        """The HCL expression of ``Ref name`` (attribute None) or ``GetAtt name.attribute``."""
        if attribute is None and name in _PSEUDO:
            if _PSEUDO[name].startswith("data."):
                self.uses.add(_PSEUDO[name].split(".")[1])
            return _PSEUDO[name]
        if attribute is None and any(p.name == name for p in self.stack.parameters):
            return f"var.{snake(name)}"
        resource = self.resource(name)
        mapping = mapping_of(self.table, resource)
        if attribute is None:
            return f"{self.address(name)}.{mapping.ref}"
        if attribute not in mapping.attrs:
            raise ShipyardError(
                f"the Terraform export cannot write GetAtt {name}.{attribute}: {mapping.type} has no such attribute "
                "here (export it as CloudFormation instead, or report it)"
            )
        return f"{self.address(name)}.{mapping.attrs[attribute]}"

    def sub(self, template: str) -> str:
        """A Sub as an interpolated HCL string: ``${Endpoint.EndpointName}`` → ``${aws_sagemaker_endpoint...}``."""
        out, last = [], 0

        def literal(text: str) -> str:  # ${!Name} is CloudFormation's literal ${Name}
            return string(text.replace("${!", "${"))[1:-1]

        for found in SUB_NAME.finditer(template):
            out.append(literal(template[last : found.start()]))
            out.append("${" + self.reference(found.group(1), found.group(2)) + "}")
            last = found.end()
        out.append(literal(template[last:]))
        return '"' + "".join(out) + '"'

    def hcl(self, item: Any) -> Any:
        """``item`` with its intrinsics as expressions (for hcl.value)."""
        if isinstance(item, Ref):
            return Expr(self.reference(item.name, None))
        if isinstance(item, GetAtt):
            return Expr(self.reference(item.logical_id, item.attribute))
        if isinstance(item, Sub):
            return Expr(self.sub(item.template))
        if isinstance(item, dict):
            return {k: self.hcl(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [self.hcl(v) for v in item]
        return item

    def json(self, item: Any) -> Expr | Call:
        """A JSON document (given as a value, or as a string of JSON) as ``jsonencode(...)``."""
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                return Expr(string(item))
        if isinstance(item, Sub):  # a JSON text with ${...} in its strings: the document, its strings interpolated
            try:
                parsed = json.loads(item.template)
            except ValueError:
                return Expr(self.sub(item.template))
            if not _keys_plain(parsed):
                return Expr(self.sub(item.template))
            return Call("jsonencode", self.hcl(_subs(parsed)))
        return Call("jsonencode", self.hcl(item))

    # -- the live values (for import ids) ---------------------------------------------------------------
    def live(self, item: Any) -> str:
        """The live value of ``item``: a parameter's default, another resource's physical id, a Sub filled."""
        if isinstance(item, Ref):
            parameter = next((p for p in self.stack.parameters if p.name == item.name), None)
            if parameter is not None:
                return str(parameter.default)
            if item.name == "AWS::Region":
                return self.stack.region
            if item.name == "AWS::AccountId":
                return self.stack.account
            return self.resource(item.name).physical_id
        if isinstance(item, GetAtt):
            return self.resource(item.logical_id).physical_id
        if isinstance(item, Sub):
            return SUB_NAME.sub(
                lambda m: self.live(GetAtt(m.group(1), m.group(2)) if m.group(2) else Ref(m.group(1))), item.template
            )
        return str(item)

    # -- bodies ----------------------------------------------------------------------------------------
    def body(self, block: Block, props: dict[str, Any], renames: dict[str, str] | None = None) -> Block:
        """CloudFormation's properties as the provider's: snake_case names (``renames`` first), a struct as a
        nested block, a list of structs as repeated blocks, ``Tags`` as a map, maps as attributes."""
        renames = renames or {}
        for key, item in props.items():
            name = renames.get(key, snake(key))
            if key == "Tags":
                block.set("tags", {t["Key"]: self.hcl(t["Value"]) for t in item})
            elif key in _MAPS or isinstance(item, Ref | GetAtt | Sub):
                block.set(name, self.hcl(item))
            elif isinstance(item, dict):
                block.add(self.body(Block(name), item, renames))
            elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
                for entry in item:
                    block.add(self.body(Block(name), entry, renames))
            else:
                block.set(name, self.hcl(item))
        return block


def _subs(item: Any) -> Any:
    """A document parsed from a Sub's JSON text, each string holding ``${`` a Sub again."""
    if isinstance(item, str):
        return Sub(item) if "${" in item else item
    if isinstance(item, dict):
        return {key: _subs(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_subs(value) for value in item]
    return item


def _keys_plain(item: Any) -> bool:
    """No key of the document holds ``${`` (a key cannot be interpolated in an HCL object written as such)."""
    if isinstance(item, dict):
        return all("${" not in key and _keys_plain(value) for key, value in item.items())
    if isinstance(item, list):
        return all(_keys_plain(value) for value in item)
    return True


def mapping_of(table: dict[str, Mapping], resource: Resource) -> Mapping:
    if resource.type not in table:
        raise ShipyardError(
            f"the Terraform export has no mapping for {resource.type} ({resource.logical_id}): "
            "export it as CloudFormation instead, or report it"
        )
    return table[resource.type]


def ident(resource: Resource, key: str) -> str:
    return resource.import_identifier.get(key) or resource.physical_id


def pick(props: dict[str, Any], *keys: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the given keys, the rest)`` of ``props``."""
    return {k: v for k, v in props.items() if k in keys}, {k: v for k, v in props.items() if k not in keys}
