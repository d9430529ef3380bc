"""The CDK and Terraform forms of an export, checked on Stacks built by hand (tests/deploy/export_stacks.py).

The checks are functions of a Stack (``check_cdk``, ``check_terraform``) so the collected Stack of a real
deploy can go through the same ones:

- CDK: the written app.py is imported and synthesized in this process with aws-cdk-lib (no CDK CLI:
  ``main(outdir).get_stack_by_name(...).template``) and compared with ``cloudformation.template(stack)``:
  the same logical ids, types, properties, DependsOn, retain policies, parameters and outputs. The only
  normalization: each ``Tags`` list is compared sorted by key, an empty one as none (the CDK's tag manager
  owns them) and DependsOn as a sorted list. Nothing else is dropped: the app adds no CDKMetadata, no BootstrapVersion
  parameter or rule, no aws:cdk:path metadata (it sets the template format version itself).
- Terraform: every written .tf parses with python-hcl2; every Stack resource is there with its mapped type and
  name; every reference (``aws_x.y.attr``, ``var.x``, ``data.x.y``) lands on something declared; every resource
  has an import block (or a comment saying why it cannot have one).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.export_stacks import digits_stack
from shipyard.deploy.export import cdk, terraform
from shipyard.deploy.export.cloudformation import template
from shipyard.deploy.export.hcl import string
from shipyard.deploy.export.hcl import value as hcl_value
from shipyard.deploy.export.model import Ref, Resource, Stack, Sub
from shipyard.deploy.export.terraform_types import translator
from shipyard.deploy.export.terraform_values import snake
from shipyard.errors import ShipyardError

hcl2 = pytest.importorskip("hcl2")

ALL_TYPES = {
    "AWS::IAM::Role", "AWS::ECR::Repository", "AWS::Logs::LogGroup", "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::SNS::Topic", "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::Scheduler::Schedule", "AWS::Events::Rule",
    "AWS::StepFunctions::StateMachine", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage", "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey",
}  # fmt: skip


# -- the checks (functions of a Stack) ---------------------------------------------------------------------
def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    """JSON's view of a template (tuples → lists), each Tags list sorted by key, each DependsOn sorted."""
    plain: dict[str, Any] = json.loads(json.dumps(document))

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            out = {k: walk(v) for k, v in item.items()}
            if out.get("Tags") == []:  # the CDK's tag manager writes no empty Tags
                del out["Tags"]
            if isinstance(out.get("Tags"), list):
                out["Tags"] = sorted(out["Tags"], key=lambda t: str(t.get("Key")))
            return out
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    walked: dict[str, Any] = walk(plain)
    for body in walked.get("Resources", {}).values():
        if "DependsOn" in body:
            depends = body["DependsOn"]
            body["DependsOn"] = sorted([depends] if isinstance(depends, str) else depends)
    return walked


def synthesize(stack: Stack, directory: Path) -> dict[str, Any]:
    """Write the CDK app of ``stack`` into ``directory``, import it and synthesize it (no CDK CLI); the template."""
    pytest.importorskip("aws_cdk")  # imported here only: it starts node (jsii)
    files = cdk.write(stack, directory)
    assert sorted(p.name for p in files) == ["app.py", "cdk.json", "requirements.txt"]
    assert json.loads((directory / "cdk.json").read_text())["app"] == "python3 app.py"
    requirements = (directory / "requirements.txt").read_text().split()
    assert any(r.startswith("aws-cdk-lib>=") and "<3" in r for r in requirements)
    assert any(r.startswith("constructs>=") and "<11" in r for r in requirements)
    name = f"shipyard_export_app_{abs(hash(directory))}"
    spec = importlib.util.spec_from_file_location(name, directory / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        assembly = module.main(str(directory / "cdk.out"))
        document: dict[str, Any] = assembly.get_stack_by_name(module.STACK_NAME).template
    finally:
        del sys.modules[name]
    return document


def check_cdk(stack: Stack, synthesized: dict[str, Any]) -> None:
    """The synthesized template is the CloudFormation writer's, resource by resource."""
    want, got = _normalized(template(stack)), _normalized(synthesized)
    assert sorted(got) == sorted(want), "the CDK added or dropped a section of the template"
    assert got.get("Parameters") == want.get("Parameters")
    assert got.get("Outputs") == want.get("Outputs")
    assert list(got["Resources"]) == list(want["Resources"]) or set(got["Resources"]) == set(want["Resources"])
    for logical_id, body in want["Resources"].items():
        made = got["Resources"][logical_id]
        assert made["Type"] == body["Type"], logical_id
        assert made.get("DeletionPolicy") == made.get("UpdateReplacePolicy") == "Retain", logical_id
        for key in sorted(set(body["Properties"]) | set(made.get("Properties", {}))):
            assert made["Properties"].get(key) == body["Properties"].get(key), f"{logical_id}.{key}"
        assert made == body, logical_id


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _strings(item: Any) -> Iterator[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, dict):
        for key, value in item.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(item, list):
        for value in item:
            yield from _strings(value)


_RESOURCE_REF = re.compile(r"(?<![\w.:/-])(aws_[a-z0-9_]+)\.([a-z0-9_]+)(?:\.|\b)")
_VAR_REF = re.compile(r"(?<![\w.])var\.([a-z0-9_]+)")
_DATA_REF = re.compile(r"(?<![\w.])data\.([a-z0-9_]+)\.([a-z0-9_]+)")


def check_terraform(stack: Stack, directory: Path) -> dict[str, dict[str, Any]]:
    """Write and parse the Terraform of ``stack``; check names, references and imports. The parsed files."""
    files = terraform.write(stack, directory)
    assert sorted(p.name for p in files) == ["imports.tf", "main.tf", "outputs.tf", "variables.tf"]
    parsed = {path.name: hcl2.load(path.open(encoding="utf-8")) for path in files}
    main = parsed["main.tf"]
    providers = main["terraform"][0]["required_providers"][0]
    assert _unquote(providers["aws"]["source"]) == "hashicorp/aws"
    assert main["provider"][0]['"aws"']["region"] == "${var.region}"
    resources: dict[str, dict[str, Any]] = {}
    for entry in main["resource"]:
        for kind, named in entry.items():
            for name, body in named.items():
                address = f"{_unquote(kind)}.{_unquote(name)}"
                assert address not in resources, f"{address} is declared twice"
                resources[address] = body
    data = {f"{_unquote(k)}.{_unquote(n)}" for entry in main.get("data", []) for k, v in entry.items() for n in v}
    variables = {_unquote(name) for entry in parsed["variables.tf"]["variable"] for name in entry}
    assert "region" in variables
    assert {snake(p.name) for p in stack.parameters} <= variables
    mapped = {kind for kinds in terraform.MAPPED.values() for kind in kinds}
    for address in resources:
        assert address.split(".")[0] in mapped, f"{address}: a type no mapping writes"
    # every Stack resource, with its mapped type and name
    for resource in stack.resources:
        address = terraform.address(stack, resource.logical_id)
        assert address.split(".")[0] == terraform.MAPPED[resource.type][0], resource.logical_id
        assert address in resources, f"{resource.logical_id} ({resource.type}) is not in main.tf as {address}"
    # every reference lands
    for text in [*_strings(main["resource"]), *_strings(parsed["outputs.tf"])]:
        for kind, name in _RESOURCE_REF.findall(text):
            if "${" in text:  # an expression, not a literal string that happens to read so
                assert f"{kind}.{name}" in resources, f"{text[:120]!r} names {kind}.{name}, not declared"
        for name in _VAR_REF.findall(text):
            assert name in variables, f"{text[:120]!r} names var.{name}, not declared"
        for kind, name in _DATA_REF.findall(text):
            assert f"{kind}.{name}" in data, f"{text[:120]!r} names data.{kind}.{name}, not declared"
    # every resource has an import block, or a comment saying why not
    imports = parsed["imports.tf"].get("import", [])
    targets = {}
    for block in imports:
        to = block["to"].removeprefix("${").removesuffix("}")
        assert to in resources, f"import into {to}, which main.tf does not declare"
        ident = _unquote(block["id"])
        assert ident and "${" not in ident, f"{to}: import id {ident!r}"
        targets[to] = ident
    written, _ = terraform.made(stack)
    for resource in stack.resources:
        for one in written[resource.logical_id]:
            if one.import_id is None:
                assert f"# {one.address}: not imported" in (directory / "imports.tf").read_text()
            else:
                assert targets.get(one.address) == one.import_id, one.address
    assert set(targets) | {o.address for m in written.values() for o in m if o.import_id is None} == set(resources)
    return parsed


# -- the tests ---------------------------------------------------------------------------------------------
STACKS = {"instances": digits_stack(), "serverless": digits_stack(serverless=True)}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each hand-built Stack's CDK app, synthesized once per session (jsii starts node: seconds)."""
    return {name: synthesize(stack, tmp_path_factory.mktemp(f"cdk-{name}")) for name, stack in STACKS.items()}


def test_the_hand_built_stack_holds_every_type() -> None:
    assert {r.type for r in STACKS["instances"].resources} == ALL_TYPES
    assert set(terraform.MAPPED) >= ALL_TYPES
    assert set(cdk.RESOURCES) >= ALL_TYPES


@pytest.mark.integration  # jsii runs aws-cdk-lib in a node subprocess
@pytest.mark.parametrize("name", sorted(STACKS))
def test_the_cdk_app_synthesizes_to_the_cloudformation_template(
    synthesized: dict[str, dict[str, Any]], name: str
) -> None:
    check_cdk(STACKS[name], synthesized[name])


def test_the_cdk_app_keeps_references_and_writes_structs_and_json_apart(tmp_path: Path) -> None:
    stack = STACKS["instances"]
    cdk.write(stack, tmp_path)
    app = (tmp_path / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert 'role.override_logical_id("Role")' in app
    assert app.count("apply_removal_policy(RemovalPolicy.RETAIN)") == len(stack.resources)
    assert "execution_role_arn=role.attr_arn" in app  # GetAtt as the construct's attribute
    assert "instance_count.value_as_number" in app and "instance_type.value_as_string" in app
    assert 'Fn.sub("shipyard-${DeploymentName}")' in app
    assert "aws_sagemaker.CfnModel.ContainerDefinitionProperty(" in app  # a struct: its class, snake_case
    assert '"Statement": [' in app  # a policy document (Json): as it is
    assert "endpoint.add_resource_dependency(log_group)" in app
    assert "dashboard_body=json.dumps(" in app and "definition_string=json.dumps(" in app  # JSON texts, readable
    assert "generate_bootstrap_version_rule=False" in app and "analytics_reporting=False" in app


@pytest.mark.integration  # jsii runs aws-cdk-lib in a node subprocess
def test_the_cdk_shapes_are_those_of_the_installed_aws_cdk_lib() -> None:
    """The shipped table (the exporter cannot import aws_cdk) is what the jsii type hints say today."""
    pytest.importorskip("aws_cdk")
    from deploy.cdk_shapes_gen import generate
    from shipyard.deploy.export import cdk_shapes

    resources, structs = generate()
    again = (
        "regenerate it: PYTHONPATH=src:tests python -m deploy.cdk_shapes_gen > src/shipyard/deploy/export/cdk_shapes.py"
    )
    assert resources == cdk_shapes.RESOURCES, again
    assert structs == cdk_shapes.STRUCTS, again
    assert importlib.metadata.version("aws-cdk-lib") == cdk_shapes.CDK_VERSION


@pytest.mark.parametrize("name", sorted(STACKS))
def test_the_terraform_parses_and_names_every_resource_and_reference(tmp_path: Path, name: str) -> None:
    check_terraform(STACKS[name], tmp_path)


def test_the_terraform_writes_the_provider_shapes(tmp_path: Path) -> None:
    parsed = check_terraform(STACKS["instances"], tmp_path)
    main = (tmp_path / "main.tf").read_text()
    assert 'resource "aws_iam_role_policy" "role_shipyard_endpoint"' in main
    assert "assume_role_policy = jsonencode({" in main
    assert '"detail-type" = ["CloudWatch Alarm State Change"]' in main
    assert 'resource "aws_cloudwatch_event_target" "idle_rule_delete_endpoint"' in main
    assert 'resource "aws_api_gateway_method_settings" "api_stage"' in main
    assert 'method_path = "*/*"' in main
    deployment = main[main.index('resource "aws_api_gateway_deployment"') :]
    assert "aws_api_gateway_integration.api_method," in deployment[: deployment.index("\n}")]
    assert "dimensions = {\n    EndpointName = var.deployment_name" in main.replace(
        "dimensions          =", "dimensions ="
    )
    config = main[main.index('resource "aws_sagemaker_endpoint_configuration"') :]
    config = config[: config.index("\n}")]
    assert "async_inference_config {" in config and "max_concurrent_invocations_per_instance = 4" in config
    assert "s3_output_path" in config and "success_topic" in config
    imports = (tmp_path / "imports.tf").read_text()
    assert 'id = "default/shipyard-digits-ttl"' in imports  # group_name/name
    assert 'id = "a1b2c3d4e5/r5s6t7/POST/424"' in imports  # REST-API-ID/RESOURCE-ID/HTTP-METHOD/STATUS-CODE
    assert 'id = "p1q2r3/k9l8m7n6o5"' in imports  # USAGE-PLAN-ID/USAGE-PLAN-KEY-ID
    assert 'id = "a1b2c3d4e5/v1/*/*"' in imports  # REST-API-ID/STAGE-NAME/METHOD-PATH
    assert 'id = "shipyard-digits-idle/delete-endpoint"' in imports  # rule/target-id
    assert parsed["variables.tf"]["variable"][0]['"region"']["default"] == '"eu-west-1"'
    variables = (tmp_path / "variables.tf").read_text()
    assert 'condition     = contains(["ml.m5.large", "ml.m5.xlarge"], var.instance_type)' in variables


def test_an_unmapped_type_is_an_error_naming_it(tmp_path: Path) -> None:
    stack = digits_stack(serverless=True)
    stack.resources.append(Resource("Queue", "AWS::SQS::Queue", {"QueueName": "q"}, "queue", "q"))
    with pytest.raises(ShipyardError, match=r"AWS::SQS::Queue \(Queue\)"):
        terraform.write(stack, tmp_path / "tf")
    with pytest.raises(ShipyardError, match=r"AWS::SQS::Queue \(Queue\)"):
        cdk.write(stack, tmp_path / "cdk")


def test_a_property_the_construct_lacks_is_an_error_naming_it(tmp_path: Path) -> None:
    stack = digits_stack(serverless=True)
    stack.resource("Endpoint").properties["ActionAfterCompletion"] = "DELETE"
    with pytest.raises(ShipyardError, match="ActionAfterCompletion of AWS::SageMaker::Endpoint"):
        cdk.write(stack, tmp_path)


def test_a_sub_becomes_an_interpolation_with_literals_escaped() -> None:
    stack = STACKS["instances"]
    values = translator(stack)
    assert values.sub("${DeploymentName}-${Role.Arn}-${AWS::Region}") == (
        '"${var.deployment_name}-${aws_iam_role.role.arn}-${var.region}"'
    )
    assert values.sub("${!Literal} %{x}") == '"$${Literal} %%{x}"'
    assert string("a ${b}") == '"a $${b}"'
    assert values.live(Sub("endpoint/${Endpoint.EndpointName}")) == "endpoint/digits"
    assert values.live(Ref("InstanceCount")) == "1"
    document = values.json(Sub('{"EndpointName": "${DeploymentName}", "Size": 2}'))
    assert hcl_value(document) == 'jsonencode({\n  EndpointName = "${var.deployment_name}"\n  Size         = 2\n})'


def test_the_provider_constraint_admits_only_providers_with_the_arguments_written(tmp_path: Path) -> None:
    """aws_cloudwatch_event_rule's ``state`` came in provider 5.27.0 (hashicorp/terraform-provider-aws#34510);
    with ">= 5.0" a 5.26 provider refused the idle rule ("An argument named state is not expected here")."""
    terraform.write(digits_stack(), tmp_path)
    text = (tmp_path / "main.tf").read_text()
    assert re.search(r'resource "aws_cloudwatch_event_rule" "[a-z_]+" \{[^}]*\n  state ', text)
    found = re.search(r'source\s*=\s*"hashicorp/aws"\s*\n\s*version\s*=\s*">= (\d+)\.(\d+)"', text)
    assert found and (int(found[1]), int(found[2])) >= (5, 27)
