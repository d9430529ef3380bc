"""What an export describes: the resources of one deployment, in CloudFormation's types and property shapes.

Every writer (CloudFormation YAML, the CDK app, Terraform) reads a :class:`Stack`; properties hold plain JSON
values and the intrinsics below (a parameter's value, another resource's attribute, a substitution).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GetAtt", "Parameter", "Ref", "Resource", "Stack", "Sub"]


@dataclass(frozen=True)
class Ref:
    """A parameter's value, or a resource's ``Ref`` (its name or ARN, as CloudFormation defines it per type)."""

    name: str


@dataclass(frozen=True)
class GetAtt:
    """An attribute of another resource of the stack: ``GetAtt("Role", "Arn")``."""

    logical_id: str
    attribute: str


@dataclass(frozen=True)
class Sub:
    """A string with ``${Param}``, ``${Logical.Attr}`` and ``${AWS::Region}``/``${AWS::AccountId}`` in it."""

    template: str


@dataclass(frozen=True)
class Parameter:
    """What a team changes without editing the resources: names, the instance type and count, the region."""

    name: str
    type: str  # "String" | "Number"
    default: str | int
    description: str
    allowed: tuple[str, ...] = ()


@dataclass
class Resource:
    """One resource: its logical id in the stack, its CloudFormation type and properties, and the live resource
    it describes (what CloudFormation resource import and ``terraform import`` attach it to)."""

    logical_id: str  # "Role", "Model", "EndpointConfig", "Endpoint", "AlarmModelLatency", ...
    type: str  # CloudFormation's: "AWS::SageMaker::Model"
    properties: dict[str, Any]
    kind: str  # Shipyard's resource kind in the state record: "role", "model", ...
    physical_id: str  # the live resource's name or ARN
    import_identifier: dict[str, str] = field(default_factory=dict)  # CloudFormation import's ResourceIdentifier
    depends_on: tuple[str, ...] = ()
    comment: str = ""


@dataclass
class Stack:
    deployment: str
    region: str
    account: str
    description: str
    parameters: list[Parameter] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # name → value (intrinsics allowed)

    def resource(self, logical_id: str) -> Resource:
        for resource in self.resources:
            if resource.logical_id == logical_id:
                return resource
        raise KeyError(logical_id)
