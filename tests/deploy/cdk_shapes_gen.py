"""Regenerate ``shipyard/deploy/export/cdk_shapes.py`` from the installed aws-cdk-lib's jsii classes.

The CDK writer must not import aws_cdk (a dev dependency: the exporter writes text), yet it has to know, for
every property of every L1 construct it writes, whether the value is a struct (passed as a dict of the struct's
snake_case fields), Json (passed as it is: policy documents, event patterns) or a plain value. That knowledge is
read here from the type hints of the jsii classes (``CfnModelProps``, ``CfnModel.ContainerDefinitionProperty``,
...) and written as a table; ``test_export_iac`` checks the shipped table is what the installed aws-cdk-lib says.

    PYTHONPATH=src:tests .venv/bin/python -m deploy.cdk_shapes_gen > src/shipyard/deploy/export/cdk_shapes.py
"""

from __future__ import annotations

import collections.abc
import importlib
import pprint
import typing
from typing import Any

# The CloudFormation types an export writes (the brief's list of a Stack's resources) and their CDK modules.
TYPES = {
    "AWS::IAM::Role": "aws_iam",
    "AWS::ECR::Repository": "aws_ecr",
    "AWS::Logs::LogGroup": "aws_logs",
    "AWS::SageMaker::Model": "aws_sagemaker",
    "AWS::SageMaker::EndpointConfig": "aws_sagemaker",
    "AWS::SageMaker::Endpoint": "aws_sagemaker",
    "AWS::ApplicationAutoScaling::ScalableTarget": "aws_applicationautoscaling",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "aws_applicationautoscaling",
    "AWS::SNS::Topic": "aws_sns",
    "AWS::SNS::Subscription": "aws_sns",
    "AWS::CloudWatch::Alarm": "aws_cloudwatch",
    "AWS::CloudWatch::Dashboard": "aws_cloudwatch",
    "AWS::Scheduler::Schedule": "aws_scheduler",
    "AWS::Events::Rule": "aws_events",
    "AWS::StepFunctions::StateMachine": "aws_stepfunctions",
    "AWS::ApiGateway::RestApi": "aws_apigateway",
    "AWS::ApiGateway::Resource": "aws_apigateway",
    "AWS::ApiGateway::Method": "aws_apigateway",
    "AWS::ApiGateway::Deployment": "aws_apigateway",
    "AWS::ApiGateway::Stage": "aws_apigateway",
    "AWS::ApiGateway::ApiKey": "aws_apigateway",
    "AWS::ApiGateway::UsagePlan": "aws_apigateway",
    "AWS::ApiGateway::UsagePlanKey": "aws_apigateway",
}

_SCALARS = (str, int, float, bool)


def _is_resolvable(hint: Any) -> bool:
    return getattr(hint, "__name__", "") == "IResolvable"


def _struct_name(cls: type) -> str:
    """``aws_sagemaker.CfnModel.ContainerDefinitionProperty`` (``CfnTag`` for the core's tag struct)."""
    module = cls.__module__.removeprefix("aws_cdk").lstrip(".")
    return f"{module}.{cls.__qualname__}" if module else cls.__qualname__


class Reader:
    def __init__(self) -> None:
        self.structs: dict[str, dict[str, str]] = {}

    def shape(self, hint: Any) -> str:
        """``s`` a plain value, ``j`` Json, ``S:NAME`` a struct, ``L:shape`` a list, ``M:shape`` a map."""
        if hint is Any:
            return "j"
        origin = typing.get_origin(hint)
        if origin is typing.Union:
            options = [a for a in typing.get_args(hint) if a is not type(None) and not _is_resolvable(a)]
            structs = [a for a in options if hasattr(a, "__jsii_name_mapping__")]
            if structs:  # Union[XProperty, Dict[str, Any]]: the dict is the struct's fields
                return self.struct(structs[0])
            shapes = {self.shape(a) for a in options}
            if len(shapes) == 1:
                return shapes.pop()
            non_scalar = sorted(s for s in shapes if s != "s")
            return non_scalar[0] if len(non_scalar) == 1 else "j"
        if origin in (collections.abc.Sequence, list):
            return "L:" + self.shape(typing.get_args(hint)[0])
        if origin in (collections.abc.Mapping, dict):
            return "M:" + self.shape(typing.get_args(hint)[1])
        if hasattr(hint, "__jsii_name_mapping__"):
            return self.struct(hint)
        if hint in _SCALARS or _is_resolvable(hint) or hasattr(hint, "__jsii_type__"):
            return "s"  # a string, number or boolean, or a reference to a resource (``IRestApiRef``): as it is
        return "j"

    def struct(self, cls: type) -> str:
        name = _struct_name(cls)
        if name not in self.structs:
            self.structs[name] = {}  # a recursive struct refers to itself
            self.structs[name] = self.fields(cls)
        return "S:" + name

    def fields(self, cls: type) -> dict[str, str]:
        hints = typing.get_type_hints(cls.__init__)
        return {field: self.shape(hints[field]) for field in cls.__jsii_name_mapping__}  # type: ignore[attr-defined]


def generate() -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """``(resources, structs)``: per CloudFormation type its class, props and attributes; per struct its fields."""
    reader = Reader()
    resources: dict[str, Any] = {}
    for cfn_type, module_name in TYPES.items():
        module = importlib.import_module(f"aws_cdk.{module_name}")
        cls = next(
            getattr(module, name)
            for name in dir(module)
            if name.startswith("Cfn") and getattr(getattr(module, name), "CFN_RESOURCE_TYPE_NAME", None) == cfn_type
        )
        props = getattr(module, f"{cls.__name__}Props")
        resources[cfn_type] = {
            "module": module_name,
            "class": cls.__name__,
            "props": reader.fields(props),
            "attrs": sorted(a for a in dir(cls) if a.startswith("attr_")),
        }
    return resources, dict(sorted(reader.structs.items()))


def render() -> str:
    import aws_cdk

    resources, structs = generate()
    version = importlib.metadata.version("aws-cdk-lib")  # type: ignore[attr-defined]
    del aws_cdk
    lines = [
        "# ruff: noqa: E501",
        f'"""What the L1 constructs of aws-cdk-lib {version} take, per property: generated by',
        "tests/deploy/cdk_shapes_gen.py from the type hints of the jsii classes (do not edit; ``test_export_iac``",
        "checks it against the installed library).",
        "",
        "A shape: ``s`` a plain value, ``j`` Json (passed as it is), ``S:NAME`` a struct (a dict of its snake_case",
        'fields, :data:`STRUCTS`), ``L:shape`` a list, ``M:shape`` a map of string keys."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        '__all__ = ["CDK_VERSION", "RESOURCES", "STRUCTS"]',
        "",
        f"CDK_VERSION = {version!r}",
        "",
        "# fmt: off",
        "RESOURCES: dict[str, dict[str, Any]] = " + pprint.pformat(resources, width=118, sort_dicts=True),
        "",
        "STRUCTS: dict[str, dict[str, str]] = " + pprint.pformat(structs, width=118, sort_dicts=True),
        "# fmt: on",
        "",
    ]
    return "\n".join(lines).replace("'", '"')  # the names hold no quotes


if __name__ == "__main__":
    import importlib.metadata

    print(render(), end="")
