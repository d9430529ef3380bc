"""The CloudFormation form of a :class:`~.model.Stack`: the template as a document (and, below, its YAML)."""

from __future__ import annotations

from typing import Any

from shipyard.deploy.export.model import GetAtt, Ref, Stack, Sub

__all__ = ["resolve", "template"]

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
