"""``shipyard export`` and ``shipyard forget`` against a moto server, after a real digits deploy (alarms, an email
topic, autoscaling, data capture; images pushed to a local registry) put on a public API (``expose``).

The CloudFormation template is checked three ways: cfn-lint passes; the import file names every resource with its
type's primary identifier; and the template deployed into moto's CloudFormation under a second name creates
resources equal to the ones ``deploy`` created. moto's CloudFormation lacks some of the template's types
(:data:`MOTO_LACKS`): those are left out of that stack (with what only referenced them), and compared nowhere.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deploy.test_deploy_sagemaker import make, spec, tagged_everywhere
from infra.cli import shipyard
from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer
from shipyard.deploy import Deployer
from shipyard.deploy.export.collect import IMPORT_IDENTIFIERS
from shipyard.deploy.export.model import Ref, Stack
from shipyard.deploy.expose import ExposeOptions, Quota
from shipyard.deploy.options import Autoscale
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.errors import DeployError

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
# Types of the export moto 5.2.5's CloudFormation cannot create (no CloudFormationModel for them).
MOTO_LACKS = {
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::Schedule",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
}
# Every call an export of this deployment makes: reads only.
EXPORT_CALLS = {
    "iam:GetRole": 2,
    "iam:ListRolePolicies": 2,
    "iam:GetRolePolicy": 2,
    "ecr:DescribeRepositories": 1,
    "ecr:GetLifecyclePolicy": 1,
    "ecr:DescribeImages": 1,
    "logs:DescribeLogGroups": 1,
    "sagemaker:DescribeModel": 1,
    "sagemaker:DescribeEndpointConfig": 1,
    "sagemaker:DescribeEndpoint": 1,
    "application-autoscaling:DescribeScalableTargets": 1,
    "application-autoscaling:DescribeScalingPolicies": 1,
    "sns:ListSubscriptionsByTopic": 1,
    "cloudwatch:DescribeAlarms": 1,
    "cloudwatch:GetDashboard": 1,
    "apigateway:GetRestApi": 1,
    "apigateway:GetResources": 1,
    "apigateway:GetStages": 1,
    "apigateway:GetMethod": 1,
    "apigateway:GetApiKey": 1,
    "apigateway:GetUsagePlan": 1,
}


# Every call a forget of this deployment makes: Shipyard's two tags off each tagged resource, nothing else.
FORGET_CALLS = {
    "iam:UntagRole": 2,
    "logs:UntagLogGroup": 1,
    "ecr:UntagResource": 1,
    "sagemaker:DeleteTags": 3,
    "sns:UntagResource": 1,
    "cloudwatch:UntagResource": 6,
    "apigateway:UntagResource": 4,
    "secretsmanager:UntagResource": 1,
    "s3:ListObjectsV2": 1,
    "s3:GetObjectTagging": 1,
    "s3:DeleteObjectTagging": 1,
}


def deployed(
    state_path: Path, bundle: Path, image: str, registry: OciRegistry, *, expose: bool = True
) -> tuple[Deployer, SageMakerTarget]:
    deployer, target, _ = make(state_path)
    options = spec(
        bundle, image, registry, instance_count=2, autoscale=Autoscale(minimum=2, maximum=4, max_rps=20.0),
        data_capture_pct=25, notify="ops@example.com",
    )  # fmt: skip
    deployer.deploy(options)
    if expose:
        deployer.expose("digits", ExposeOptions(auth="api-key", rate=20.0, burst=40, quota=Quota(5000, "DAY")))
    return deployer, target


def lint(path: Path) -> list[str]:
    from cfnlint.api import lint as cfn_lint

    return [str(match) for match in cfn_lint(path.read_text(), regions=[REGION])]


def renamed(value: Any, old: str = "digits", new: str = "digits2") -> Any:
    """``value`` with the deployment's name ``old`` (as a whole word) replaced by ``new``: what the second
    stack's resources must equal."""
    text = json.dumps(value, default=str)
    return json.loads(re.sub(rf"(?<![A-Za-z0-9]){old}(?![A-Za-z0-9])", new, text))


def policy_document(value: Any) -> Any:
    """An inline policy as GetRolePolicy answers it: moto keeps one made by its CloudFormation as the Python
    repr of the template's mapping (a string), where IAM itself answers the document."""
    return ast.literal_eval(value) if isinstance(value, str) else value


def moto_template(document: dict[str, Any]) -> dict[str, Any]:
    """The template without the types moto lacks (and what refers to them only), for moto's create_stack."""
    trimmed = copy.deepcopy(document)
    resources = trimmed["Resources"]
    gone = {name for name, body in resources.items() if body["Type"] in MOTO_LACKS}
    for name in gone:
        del resources[name]
    for body in resources.values():
        if "DependsOn" in body:
            body["DependsOn"] = [d for d in body["DependsOn"] if d not in gone] or None
            if body["DependsOn"] is None:
                del body["DependsOn"]
    return trimmed


def test_export_writes_a_linted_template_an_import_file_and_reads_aws_only(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    deployer, target = deployed(state_path, digits_bundle, small_image, registry)
    record = deployer.record("digits")
    before = target.aws(REGION).calls.copy()
    files = deployer.export("digits", "cloudformation", tmp_path / "cfn")
    calls = target.aws(REGION).calls - before
    print("export calls:", dict(calls), sum(calls.values()))
    assert dict(calls) == EXPORT_CALLS  # reads only: nothing created, changed or deleted
    assert [f.name for f in files] == ["template.yaml", "import-template.yaml", "resources-to-import.json", "README.md"]
    directory = tmp_path / "cfn"
    assert lint(directory / "template.yaml") == []
    assert lint(directory / "import-template.yaml") == []

    document = yaml.safe_load((directory / "template.yaml").read_text())
    assert (directory / "template.yaml").read_text().startswith("# CloudFormation template of the Shipyard deployment")
    expected_types = {
        "Role": "AWS::IAM::Role", "Repository": "AWS::ECR::Repository", "LogGroup": "AWS::Logs::LogGroup",
        "Model": "AWS::SageMaker::Model", "EndpointConfig": "AWS::SageMaker::EndpointConfig",
        "Endpoint": "AWS::SageMaker::Endpoint", "ScalableTarget": "AWS::ApplicationAutoScaling::ScalableTarget",
        "ScalingPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy", "Topic": "AWS::SNS::Topic",
        "TopicSubscription": "AWS::SNS::Subscription", "AlarmModelLatency": "AWS::CloudWatch::Alarm",
        "AlarmOverheadLatency": "AWS::CloudWatch::Alarm", "AlarmInvocation5XXErrors": "AWS::CloudWatch::Alarm",
        "AlarmInvocation4XXErrors": "AWS::CloudWatch::Alarm", "AlarmCPUUtilization": "AWS::CloudWatch::Alarm",
        "AlarmMemoryUtilization": "AWS::CloudWatch::Alarm", "Dashboard": "AWS::CloudWatch::Dashboard",
        "ApiRole": "AWS::IAM::Role", "Api": "AWS::ApiGateway::RestApi", "ApiResource": "AWS::ApiGateway::Resource",
        "ApiMethod": "AWS::ApiGateway::Method", "ApiDeployment": "AWS::ApiGateway::Deployment",
        "ApiStage": "AWS::ApiGateway::Stage", "ApiKey": "AWS::ApiGateway::ApiKey",
        "ApiUsagePlan": "AWS::ApiGateway::UsagePlan", "ApiUsagePlanKey": "AWS::ApiGateway::UsagePlanKey",
    }  # fmt: skip
    assert {k: v["Type"] for k, v in document["Resources"].items()} == expected_types
    assert all(v["DeletionPolicy"] == "Retain" for v in document["Resources"].values())
    assert list(document["Parameters"]) == [
        "DeploymentName", "LogRetentionDays", "InstanceType", "InstanceCount", "MinInstances", "MaxInstances",
        "NotifyEmail",
    ]  # fmt: skip
    assert document["Parameters"]["InstanceCount"]["Default"] == 2
    model = document["Resources"]["Model"]["Properties"]
    digest = boto3.client("ecr").describe_images(repositoryName="shipyard/digits")["imageDetails"][0]["imageDigest"]
    assert model["PrimaryContainer"]["Image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard/digits@{digest}"
    version = record.details.version
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/shipyard/digits/{version}/model.tar.gz"
    assert model["ModelName"] == {"Fn::Sub": f"${{DeploymentName}}-{version}"}
    variant = document["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"][0]
    assert variant["InstanceType"] == {"Ref": "InstanceType"} and variant["InitialInstanceCount"] == {
        "Ref": "InstanceCount"
    }
    assert "import-template" not in json.dumps(document)  # the template itself names no file

    # the import file: every resource, each by its type's primary identifier, with the live values
    imports = json.loads((directory / "resources-to-import.json").read_text())
    assert [i["LogicalResourceId"] for i in imports] == list(expected_types)
    for item in imports:
        assert item["ResourceType"] == expected_types[item["LogicalResourceId"]]
        assert tuple(item["ResourceIdentifier"]) == IMPORT_IDENTIFIERS[item["ResourceType"]]
    ids = {i["LogicalResourceId"]: i["ResourceIdentifier"] for i in imports}
    exposure = record.exposure
    assert exposure is not None
    sm = boto3.client("sagemaker")
    assert ids["Role"] == {"RoleName": "shipyard-digits"}
    assert ids["Model"] == {"ModelArn": sm.describe_model(ModelName=record.details.model)["ModelArn"]}
    assert ids["Endpoint"] == {"EndpointArn": sm.describe_endpoint(EndpointName="digits")["EndpointArn"]}
    assert ids["ScalableTarget"] == {
        "ResourceId": "endpoint/digits/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ServiceNamespace": "sagemaker",
    }
    policy = boto3.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")
    assert ids["ScalingPolicy"]["Arn"] == policy["ScalingPolicies"][0]["PolicyARN"]
    assert ids["Topic"] == {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:shipyard-digits-alarms"}
    assert ids["AlarmModelLatency"] == {"AlarmName": "shipyard-digits-ModelLatency"}
    assert ids["Api"] == {"RestApiId": exposure.api_id}
    assert ids["ApiStage"] == {"RestApiId": exposure.api_id, "StageName": "v1"}
    assert ids["ApiKey"] == {"APIKeyId": exposure.key_id}
    assert ids["ApiUsagePlan"] == {"Id": exposure.usage_plan_id}
    # Ref of an AWS::ApiGateway::UsagePlanKey (its Id): the key's id and the plan's joined by ":"
    assert ids["ApiUsagePlanKey"] == {"Id": f"{exposure.key_id}:{exposure.usage_plan_id}"}
    stage = boto3.client("apigateway").get_stage(restApiId=exposure.api_id, stageName="v1")
    assert ids["ApiDeployment"] == {"DeploymentId": stage["deploymentId"], "RestApiId": exposure.api_id}
    # the import template: the same resources, no Outputs (an import adds none)
    importing = yaml.safe_load((directory / "import-template.yaml").read_text())
    assert list(importing["Resources"]) == list(expected_types) and "Outputs" not in importing
    readme = (directory / "README.md").read_text()
    assert "--change-set-type IMPORT" in readme and "shipyard forget digits" in readme
    assert tagged_everywhere()["sagemaker"]  # nothing untagged by an export


def test_the_template_deployed_in_moto_creates_what_deploy_created(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    deployer, _ = deployed(state_path, digits_bundle, small_image, registry)
    record = deployer.record("digits")
    deployer.export("digits", "cloudformation", tmp_path)
    document = yaml.safe_load((tmp_path / "template.yaml").read_text())
    trimmed = moto_template(document)
    left_out = sorted(set(document["Resources"]) - set(trimmed["Resources"]))
    print("left out of moto's stack (types moto lacks):", left_out)
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName="shipyard-digits2",
        TemplateBody=yaml.safe_dump(trimmed, sort_keys=False),
        Parameters=[{"ParameterKey": "DeploymentName", "ParameterValue": "digits2"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="shipyard-digits2")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="shipyard-digits2")["StackResourceSummaries"]
    }
    created = set(physical)
    # moto's CloudFormation names SageMaker models, endpoint configs and endpoints itself (STACK-LogicalId-...),
    # whatever ModelName/EndpointConfigName/EndpointName say: they are found by their physical ids (ARNs) here
    model_name2, config_name2, endpoint_name2 = (
        physical[k].rsplit("/", 1)[-1] for k in ("Model", "EndpointConfig", "Endpoint")
    )
    assert created == set(trimmed["Resources"])

    iam, sm, ecr, logs = boto3.client("iam"), boto3.client("sagemaker"), boto3.client("ecr"), boto3.client("logs")
    for role in ("shipyard-digits", "shipyard-digits.api"):
        first, second = iam.get_role(RoleName=role)["Role"], iam.get_role(RoleName=renamed(role))["Role"]
        for key in ("Path", "AssumeRolePolicyDocument", "Description", "MaxSessionDuration"):
            assert second[key] == renamed(first[key]), (role, key)
        policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        assert iam.list_role_policies(RoleName=renamed(role))["PolicyNames"] == policies
        for policy in policies:
            one = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
            two = iam.get_role_policy(RoleName=renamed(role), PolicyName=policy)["PolicyDocument"]
            assert policy_document(two) == renamed(one), policy

    model = sm.describe_model(ModelName=record.details.model or "")
    model2 = sm.describe_model(ModelName=model_name2)
    container, container2 = model["PrimaryContainer"], model2["PrimaryContainer"]
    assert (
        container2["Image"]
        == container["Image"].rsplit(":", 1)[0]
        + "@"
        + ecr.describe_images(repositoryName="shipyard/digits")["imageDetails"][0]["imageDigest"]
    )  # the same image, pinned by its digest
    assert container2["ModelDataUrl"] == container["ModelDataUrl"]  # the same artifact
    assert container2["Environment"] == container["Environment"]
    assert model2["ExecutionRoleArn"] == renamed(model["ExecutionRoleArn"])

    config = sm.describe_endpoint_config(EndpointConfigName=record.details.endpoint_config or "")
    config2 = sm.describe_endpoint_config(EndpointConfigName=config_name2)
    variants = renamed(config["ProductionVariants"])
    variants[0]["ModelName"] = model_name2  # (moto's name, above)
    assert config2["ProductionVariants"] == variants
    assert config2["DataCaptureConfig"] == renamed(config["DataCaptureConfig"])
    endpoint2 = sm.describe_endpoint(EndpointName=endpoint_name2)
    assert endpoint2["EndpointConfigName"] == config2["EndpointConfigName"]

    repo = ecr.describe_repositories(repositoryNames=["shipyard/digits"])["repositories"][0]
    repo2 = ecr.describe_repositories(repositoryNames=["shipyard/digits2"])["repositories"][0]
    assert repo2["imageTagMutability"] == repo["imageTagMutability"] == "IMMUTABLE"
    # moto's CloudFormation drops the rest of AWS::ECR::Repository: it passes ImageScanningConfiguration and
    # EncryptionConfiguration on with CloudFormation's keys (ScanOnPush, EncryptionType) where its backend reads
    # scanOnPush and encryptionType, and ignores LifecyclePolicy; the template's values are checked against the
    # deployed ones instead
    properties = document["Resources"]["Repository"]["Properties"]
    assert properties["EncryptionConfiguration"] == {
        "EncryptionType": repo["encryptionConfiguration"]["encryptionType"]
    }
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": repo["imageScanningConfiguration"]["scanOnPush"]}
    lifecycle = ecr.get_lifecycle_policy(repositoryName="shipyard/digits")["lifecyclePolicyText"]
    assert json.loads(properties["LifecyclePolicy"]["LifecyclePolicyText"]) == json.loads(lifecycle)
    groups = {
        g["logGroupName"]: g
        for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/")["logGroups"]
    }
    assert (
        groups["/aws/sagemaker/Endpoints/digits2"]["retentionInDays"]
        == groups["/aws/sagemaker/Endpoints/digits"]["retentionInDays"]
    )

    cloudwatch = boto3.client("cloudwatch")
    body = cloudwatch.get_dashboard(DashboardName="shipyard-digits")["DashboardBody"]
    assert json.loads(cloudwatch.get_dashboard(DashboardName="shipyard-digits2")["DashboardBody"]) == renamed(
        json.loads(body)
    )
    topics = [t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]]
    assert f"arn:aws:sns:{REGION}:{ACCOUNT}:shipyard-digits2-alarms" in topics

    apigw = boto3.client("apigateway")
    apis = {a["name"]: a for a in apigw.get_rest_apis()["items"]}
    api, api2 = apis["shipyard-digits"], apis["shipyard-digits2"]
    assert api2["description"] == renamed(api["description"])
    # moto's CloudFormation keeps EndpointConfiguration with CloudFormation's key (Types, answered as {}) and
    # drops BinaryMediaTypes and ApiKeySourceType: checked against the template instead
    api_properties = document["Resources"]["Api"]["Properties"]
    assert api_properties["EndpointConfiguration"] == {"Types": api["endpointConfiguration"]["types"]}
    assert api_properties["BinaryMediaTypes"] == api["binaryMediaTypes"]
    assert api_properties["ApiKeySourceType"] == api["apiKeySource"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api2["id"])["items"]}
    assert sorted(resources) == ["/", "/predict"]
    first = {r["path"]: r for r in apigw.get_resources(restApiId=api["id"])["items"]}["/predict"]["id"]
    method = apigw.get_method(restApiId=api["id"], resourceId=first, httpMethod="POST")
    method2 = apigw.get_method(restApiId=api2["id"], resourceId=resources["/predict"]["id"], httpMethod="POST")
    for key in ("authorizationType", "apiKeyRequired"):
        assert method2[key] == method[key], key
    integration, integration2 = method["methodIntegration"], method2["methodIntegration"]
    for key in ("type", "httpMethod", "uri"):
        assert integration2[key] == renamed(integration[key]), key
    # moto's CloudFormation keeps only the integration's type, method and URI (no Credentials, request
    # parameters, responses): those are checked against the template
    integration_properties = document["Resources"]["ApiMethod"]["Properties"]["Integration"]
    assert integration_properties["Credentials"] == {"Fn::GetAtt": ["ApiRole", "Arn"]}
    assert integration_properties["TimeoutInMillis"] == integration["timeoutInMillis"]
    assert integration_properties["RequestParameters"] == integration["requestParameters"]
    assert len(integration_properties["IntegrationResponses"]) == len(integration["integrationResponses"])


def test_forget_drops_the_record_and_the_tags_and_deletes_nothing(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target = deployed(state_path, digits_bundle, small_image, registry)
    record = deployer.record("digits")
    sm, iam, apigw = boto3.client("sagemaker"), boto3.client("iam"), boto3.client("apigateway")
    before = {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "apis": [a["id"] for a in apigw.get_rest_apis()["items"]],
        "alarms": sorted(a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]),
    }
    # moto's server cannot untag API Gateway resources (its route for DELETE /tags/{arn} answers 404 for the
    # ARN's encoded slashes): UntagResource of apigateway alone is scripted, and its calls checked
    untag_api = answer(target.aws(REGION).client("apigateway"), "UntagResource", {})
    calls_before = target.aws(REGION).calls.copy()
    untagged = deployer.forget("digits")
    calls = target.aws(REGION).calls - calls_before
    print("forget calls:", dict(calls), sum(calls.values()))
    assert dict(calls) == FORGET_CALLS  # tags removed, nothing else
    assert deployer.state.get("digits") is None
    kinds = {entry.split()[0] for entry in untagged}
    assert kinds == {
        "role", "log-group", "ecr-repository", "model", "endpoint-config", "endpoint", "sns-topic", "alarm",
        "api-role", "rest-api", "api-key", "usage-plan", "api-key-secret", "s3-prefix",
    }  # fmt: skip
    after = {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "apis": [a["id"] for a in apigw.get_rest_apis()["items"]],
        "alarms": sorted(a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]),
    }
    assert after == before  # nothing deleted
    assert sm.describe_endpoint(EndpointName="digits")["EndpointStatus"] == "InService"
    assert iam.list_role_tags(RoleName="shipyard-digits")["Tags"] == []
    # Shipyard's tag is on nothing reconcile looks for by tag any more (the dashboard takes no tags:
    # tagged_everywhere finds it by name; the scalable target keeps its tag, found through its endpoint only)
    assert tagged_everywhere() == {
        "cloudwatch": ["shipyard-digits"],
        "autoscaling": ["endpoint/digits/variant/AllTraffic"],
    }
    exposure = record.exposure
    assert exposure is not None
    api = f"arn:aws:apigateway:{REGION}::"
    assert sorted(call["resourceArn"] for call in untag_api) == sorted(
        [
            f"{api}/restapis/{exposure.api_id}",
            f"{api}/restapis/{exposure.api_id}/stages/v1",
            f"{api}/usageplans/{exposure.usage_plan_id}",
            f"{api}/apikeys/{exposure.key_id}",
        ]
    )
    assert all(call["tagKeys"] == ["shipyard:deployment", "shipyard:expires-at"] for call in untag_api)
    # so `status --reconcile` does not take it back: nothing it finds by tag comes back (here the API's parts,
    # still tagged in moto, bring back a record of them and of what reconcile then finds by name)
    back = {r.name: {res.kind for res in r.resources} for r in deployer.reconcile(REGION)}
    assert set(back) <= {"digits"}
    tag_found = {"endpoint", "endpoint-config", "model", "role", "api-role", "ecr-repository", "log-group"}
    assert back.get("digits", set()) & tag_found == set()
    deployer.state.remove("digits")
    assert deployer.cleanup("digits").recorded is False
    assert sm.describe_endpoint(EndpointName="digits")["EndpointStatus"] == "InService"


def test_export_of_a_local_deployment_and_an_unknown_format_are_clear_errors(state_path: Path, tmp_path: Path) -> None:
    from shipyard.deploy.state import Deployment, StateStore
    from shipyard.errors import SpecError

    store = StateStore(state_path)
    store.put(
        Deployment(name="here", target="local", status="InService", source="b", created_at="2026-12-01T00:00:00+00:00",
                   updated_at="2026-12-01T00:00:00+00:00")
    )  # fmt: skip
    deployer = Deployer(store)
    with pytest.raises(DeployError, match="runs on local: `shipyard export` hands over a sagemaker"):
        deployer.export("here", "cloudformation", tmp_path / "out")
    with pytest.raises(DeployError, match="runs on local: `shipyard forget`"):
        deployer.forget("here")
    assert store.get("here") is not None and not (tmp_path / "out").exists()
    from shipyard.deploy.export import writer

    with pytest.raises(SpecError, match="--format 'pulumi': one of cloudformation, cdk, terraform"):
        writer("pulumi")


def test_the_cli_writes_the_files_and_forgets(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    import jsonschema

    deployed(state_path, digits_bundle, small_image, registry, expose=False)  # (moto cannot untag API Gateway)
    done = shipyard(
        "export", "digits", "--format", "cloudformation", "-o", str(tmp_path / "out"), "--output", "json",
        "--state", str(state_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / "export.v1.json").read_text()))
    assert [Path(f).name for f in document["files"]] == [
        "template.yaml", "import-template.yaml", "resources-to-import.json", "README.md",
    ]  # fmt: skip
    assert all(Path(f).is_file() for f in document["files"])
    assert "shipyard forget digits" in document["next"]
    table = shipyard(
        "export", "digits", "--format", "cloudformation", "-o", str(tmp_path / "t"), "--state", str(state_path)
    )
    assert table.returncode == 0, table.stderr
    assert "template.yaml" in table.stdout and "next: " in table.stdout
    refused = shipyard("export", "digits", "--format", "pulumi", "-o", str(tmp_path / "p"), "--state", str(state_path))
    assert refused.returncode != 0 and "one of cloudformation, cdk, terraform" in refused.stderr

    kept = shipyard("forget", "digits", "--state", str(state_path), stdin="n\n")
    assert kept.returncode == 1 and json.loads(state_path.read_text())["deployments"].get("digits")
    gone = shipyard("forget", "digits", "--yes", "--state", str(state_path))
    assert gone.returncode == 0, gone.stderr
    assert "nothing was deleted" in gone.stdout
    assert "digits" not in json.loads(state_path.read_text())["deployments"]
    assert boto3.client("sagemaker").describe_endpoint(EndpointName="digits")["EndpointStatus"] == "InService"


def test_a_stack_without_a_topic_or_api_refs_only_what_it_has() -> None:
    """The template of a small Stack: intrinsics in long form, every resource retained."""
    from shipyard.deploy.export.cloudformation import resources_to_import, template
    from shipyard.deploy.export.model import Parameter, Resource

    stack = Stack("x", REGION, ACCOUNT, "d", parameters=[Parameter("DeploymentName", "String", "x", "name")])
    stack.resources.append(
        Resource("LogGroup", "AWS::Logs::LogGroup", {"LogGroupName": Ref("DeploymentName")}, "log-group", "x",
                 {"LogGroupName": "x"})
    )  # fmt: skip
    document = template(stack)
    assert document["Resources"]["LogGroup"]["Properties"] == {"LogGroupName": {"Ref": "DeploymentName"}}
    assert resources_to_import(stack) == [
        {
            "ResourceType": "AWS::Logs::LogGroup",
            "LogicalResourceId": "LogGroup",
            "ResourceIdentifier": {"LogGroupName": "x"},
        }
    ]


def put_guards(name: str = "digits") -> dict[str, str]:
    """The spend guards of ``name`` made in moto directly, as the guards of ``--ttl``/``--idle`` are (their own
    code is built beside this one): the guard role, the TTL schedule, the idle alarm, rule and state machine."""
    iam, arn_of = boto3.client("iam"), f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["scheduler.amazonaws.com", "states.amazonaws.com"]},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
        ],
    }  # fmt: skip
    role = iam.create_role(
        RoleName=f"shipyard-{name}.guard", Path="/shipyard/", AssumeRolePolicyDocument=json.dumps(trust)
    )
    delete = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sagemaker:DeleteEndpoint", "Resource": arn_of}],
    }
    iam.put_role_policy(
        RoleName=f"shipyard-{name}.guard", PolicyName="shipyard-delete-endpoint", PolicyDocument=json.dumps(delete)
    )
    role_arn = role["Role"]["Arn"]
    boto3.client("scheduler").create_schedule(
        Name=f"shipyard-{name}-ttl", ScheduleExpression="at(2026-12-06T12:00:00)", ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"}, Description=f"deletes the endpoint {name} at its TTL",
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:sagemaker:deleteEndpoint", "RoleArn": role_arn,
                "Input": json.dumps({"EndpointName": name})},
    )  # fmt: skip
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=f"shipyard-{name}-idle", Namespace="AWS/SageMaker", MetricName="Invocations", Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=3600, EvaluationPeriods=4, Threshold=1.0, ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )  # fmt: skip
    task = {"Type": "Task", "End": True, "Resource": "arn:aws:states:::aws-sdk:sagemaker:deleteEndpoint",
            "Parameters": {"EndpointName": name}}  # fmt: skip
    definition = {"StartAt": "Delete", "States": {"Delete": task}}
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"shipyard-{name}-idle", definition=json.dumps(definition), roleArn=role_arn
    )["stateMachineArn"]
    pattern = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
               "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shipyard-{name}-idle"],
               "detail": {"state": {"value": ["ALARM"]}}}  # fmt: skip
    events = boto3.client("events")
    events.put_rule(Name=f"shipyard-{name}-idle", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=f"shipyard-{name}-idle", Targets=[{"Id": "delete", "Arn": machine, "RoleArn": role_arn}])
    return {"ttl-schedule": f"shipyard-{name}-ttl", "idle-rule": f"shipyard-{name}-idle", "state-machine": machine,
            "idle-alarm": f"shipyard-{name}-idle", "guard-role": f"shipyard-{name}.guard"}  # fmt: skip


def test_a_serverless_deployment_with_guards_exports_them(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    from shipyard.deploy.options import Serverless

    deployer, target, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, serverless=Serverless(2048, 10)))
    record = deployer.record("digits")
    for kind, ident in put_guards().items():
        record.add(kind, ident)
    deployer.state.put(record)
    before = target.aws(REGION).calls.copy()
    deployer.export("digits", "cloudformation", tmp_path)
    calls = target.aws(REGION).calls - before
    print("export calls (serverless, guards):", dict(calls), sum(calls.values()))
    assert lint(tmp_path / "template.yaml") == []
    document = yaml.safe_load((tmp_path / "template.yaml").read_text())
    resources = document["Resources"]
    guards = ("GuardRole", "TtlSchedule", "IdleAlarm", "IdleRule", "IdleStateMachine")
    assert {k: resources[k]["Type"] for k in guards} == {
        "GuardRole": "AWS::IAM::Role", "TtlSchedule": "AWS::Scheduler::Schedule", "IdleAlarm": "AWS::CloudWatch::Alarm",
        "IdleRule": "AWS::Events::Rule", "IdleStateMachine": "AWS::StepFunctions::StateMachine",
    }  # fmt: skip
    assert "InstanceType" not in document["Parameters"] and "ScalableTarget" not in resources
    variant = resources["EndpointConfig"]["Properties"]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10}
    schedule = resources["TtlSchedule"]["Properties"]
    # the time is a parameter whose default is the live one: a new stack needs a time still to come
    assert schedule["ScheduleExpression"] == {"Fn::Sub": "at(${TtlAt})"}
    assert document["Parameters"]["TtlAt"]["Default"] == "2026-12-06T12:00:00"
    assert schedule["Target"]["RoleArn"] == {"Fn::GetAtt": ["GuardRole", "Arn"]}
    assert schedule["Target"]["Input"] == {"Fn::Sub": '{"EndpointName": "${DeploymentName}"}'}
    rule = resources["IdleRule"]["Properties"]
    assert rule["Targets"] == [
        {"Id": "delete", "Arn": {"Ref": "IdleStateMachine"}, "RoleArn": {"Fn::GetAtt": ["GuardRole", "Arn"]}}
    ]
    assert rule["EventPattern"]["detail-type"] == ["CloudWatch Alarm State Change"]
    machine = resources["IdleStateMachine"]["Properties"]
    assert machine["RoleArn"] == {"Fn::GetAtt": ["GuardRole", "Arn"]}
    assert json.loads(machine["DefinitionString"]["Fn::Sub"])["States"]["Delete"]["Parameters"] == {
        "EndpointName": "${DeploymentName}"
    }
    imports = {
        i["LogicalResourceId"]: i["ResourceIdentifier"]
        for i in json.loads((tmp_path / "resources-to-import.json").read_text())
    }
    assert imports["TtlSchedule"] == {"Name": "shipyard-digits-ttl"}
    assert imports["IdleRule"] == {"Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/shipyard-digits-idle"}
    assert imports["IdleStateMachine"] == {"Arn": record.one("state-machine")}
    assert imports["IdleAlarm"] == {"AlarmName": "shipyard-digits-idle"}
    assert imports["GuardRole"] == {"RoleName": "shipyard-digits.guard"}


def test_names_account_and_region_become_substitutions_and_nothing_else() -> None:
    """What a value read from AWS becomes in the template: the deployment's name as a whole word, the account, the
    region and the partition as ``Fn::Sub``; a literal ``${`` escaped; a string without any of them kept."""
    from shipyard.deploy.export.collect import _Substitute
    from shipyard.deploy.export.model import Sub

    sub = _Substitute(name="a", account=ACCOUNT, region=REGION, partition="aws")
    assert sub(f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-a") == Sub(
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/shipyard/shipyard-${DeploymentName}"
    )
    assert sub("shipyard-ab") == "shipyard-ab" and sub("data") == "data"  # "a" only as a whole word
    assert sub("a ${x}") == Sub("${DeploymentName} ${!x}")
    assert sub("${x}") == "${x}"  # nothing substituted: kept as it was
    assert sub({"k": [f"{REGION}", 3, True]}) == {"k": [Sub("${AWS::Region}"), 3, True]}


def test_a_name_of_aws_own_vocabulary_stays_literal_and_capitals_get_their_lower_case_parameter() -> None:
    """The names a template derives from ``DeploymentName`` are found as whole words; a deployment called
    ``sagemaker`` would also rewrite ``sagemaker.amazonaws.com``, so its names stay literal (no parameter), and a
    name with capitals is in lower case in SageMaker's ARNs (``DeploymentNameLower``)."""
    from shipyard.deploy.export.collect import _Substitute
    from shipyard.deploy.export.model import Sub

    literal = _Substitute(name="sagemaker", account=ACCOUNT, region=REGION, partition="aws")
    assert literal("sagemaker.amazonaws.com") == "sagemaker.amazonaws.com"
    assert literal(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/sagemaker") == Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/sagemaker"
    )
    assert literal.used == set()

    capitals = _Substitute(name="Digits", account=ACCOUNT, region=REGION, partition="aws")
    assert capitals(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/digits") == Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${DeploymentNameLower}"
    )
    assert capitals("shipyard-Digits-ttl") == Sub("shipyard-${DeploymentName}-ttl")
    assert capitals.used == {"DeploymentName", "DeploymentNameLower"}
