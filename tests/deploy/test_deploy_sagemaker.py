"""The sagemaker target against a moto server, with images pushed to a real registry on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from shipyard.cloud import Aws
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.options import Autoscale, SecretRef, Serverless
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.deploy.state import StateStore

pytestmark = pytest.mark.integration

TAG = {"Key": "shipyard:deployment", "Value": "digits"}


class Steps:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.states: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        self.states.append(state)


def make(state_path: Path) -> tuple[Deployer, SageMakerTarget, Steps]:
    aws = Aws(REGION)
    target = SageMakerTarget(EngineImages("podman"), aws=aws, poll_s=0.01)
    steps = Steps()
    return Deployer(StateStore(state_path), targets={"sagemaker": target}, reporter=steps), target, steps


def spec(bundle: Path, image: str, registry: OciRegistry, **changes: Any) -> DeployOptions:
    values: dict[str, Any] = {
        "source": str(bundle),
        "name": "digits",
        "target": "sagemaker",
        "image": image,
        "registry_override": registry.host,
        "region": REGION,
    }
    values.update(changes)
    return DeployOptions(**values)


def tagged_everywhere(name: str = "digits") -> dict[str, list[str]]:
    """Every resource in moto carrying ``shipyard:deployment=name``, by service (what cleanup must empty)."""
    found: dict[str, list[str]] = {}
    sm = boto3.client("sagemaker")
    for kind, key, arn in (
        ("endpoints", "Endpoints", "EndpointArn"),
        ("endpoint_configs", "EndpointConfigs", "EndpointConfigArn"),
        ("models", "Models", "ModelArn"),
    ):
        for item in getattr(sm, f"list_{kind}")()[key]:
            if TAG in sm.list_tags(ResourceArn=item[arn])["Tags"]:
                found.setdefault("sagemaker", []).append(item[arn])
    iam = boto3.client("iam")
    for role in iam.list_roles()["Roles"]:
        if TAG in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]:
            found.setdefault("iam", []).append(role["RoleName"])
    ecr = boto3.client("ecr")
    for repo in ecr.describe_repositories()["repositories"]:
        if TAG in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]:
            found.setdefault("ecr", []).append(repo["repositoryName"])
    logs = boto3.client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        if logs.list_tags_log_group(logGroupName=group["logGroupName"])["tags"].get(TAG["Key"]) == name:
            found.setdefault("logs", []).append(group["logGroupName"])
    s3 = boto3.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            tags = s3.get_object_tagging(Bucket=bucket["Name"], Key=item["Key"])["TagSet"]
            if TAG in tags:
                found.setdefault("s3", []).append(item["Key"])
    cloudwatch = boto3.client("cloudwatch")  # alarms are tagged; dashboards take no tags: found by name
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        if TAG in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]:
            found.setdefault("cloudwatch", []).append(alarm["AlarmName"])
    for board in cloudwatch.list_dashboards(DashboardNamePrefix=f"shipyard-{name}")["DashboardEntries"]:
        found.setdefault("cloudwatch", []).append(board["DashboardName"])
    sns = boto3.client("sns")
    for topic in sns.list_topics()["Topics"]:
        if TAG in sns.list_tags_for_resource(ResourceArn=topic["TopicArn"])["Tags"]:
            found.setdefault("sns", []).append(topic["TopicArn"])
    scaling = boto3.client("application-autoscaling")
    for target in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]:
        if f"endpoint/{name}/" in target["ResourceId"]:
            found.setdefault("autoscaling", []).append(target["ResourceId"])
    return found


def test_deploy_creates_every_resource_with_exact_settings_and_cleanup_removes_them(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    secret_arn = boto3.client("secretsmanager").create_secret(Name="db/password", SecretString="hunter2-value")["ARN"]
    deployer, target, _steps = make(state_path)
    endpoint = deployer.deploy(
        spec(
            digits_bundle,
            small_image,
            registry,
            instance_count=2,
            autoscale=Autoscale(minimum=2, maximum=4, max_rps=20.0),
            env={"LOG_FORMAT": "json", "API_TOKEN_HINT": "visible-env-value"},
            secrets=(SecretRef.parse("DB_PASSWORD=db/password"),),
            data_capture_pct=25,
            startup_timeout_s=900,
        )
    )
    deploy_calls = target.aws(REGION).total_calls
    assert endpoint.status == "InService"
    record = deployer.record("digits")
    version = record.details.version
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"

    # IAM: trust limited to SageMaker for this account; the policy names exactly this deployment's resources.
    iam = boto3.client("iam")
    role = iam.get_role(RoleName="shipyard-digits")["Role"]
    assert role["Path"] == "/shipyard/"
    assert role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
    policy = iam.get_role_policy(RoleName="shipyard-digits", PolicyName="shipyard-endpoint")["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["PullImage"]["Resource"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/shipyard/digits"
    assert by_sid["PullImage"]["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert by_sid["EcrLogin"] == {
        "Sid": "EcrLogin",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }
    assert by_sid["ReadModel"]["Resource"] == f"arn:aws:s3:::{bucket}/shipyard/digits/*"
    assert by_sid["WriteCapture"]["Resource"] == f"arn:aws:s3:::{bucket}/shipyard/digits/capture/*"
    assert by_sid["WriteLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/digits",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/digits:log-stream:*",
    ]
    assert by_sid["ReadSecrets"] == {
        "Sid": "ReadSecrets",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": [secret_arn],
    }
    # Deployment guardrails read the rollback alarms with this role: exactly those two alarms.
    assert by_sid["ReadRollbackAlarms"] == {
        "Sid": "ReadRollbackAlarms",
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        "Resource": [
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shipyard-digits-Invocation5XXErrors",
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shipyard-digits-ModelLatency",
        ],
    }
    # A bare "*" only where AWS has no resource ARN for the action (patterns stay under a known ARN).
    wildcards = [
        s["Sid"]
        for s in policy["Statement"]
        if "*" in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert wildcards == ["EcrLogin"]

    # ECR: scan on push, immutable tags, lifecycle, tagged; the pushed manifest recorded under the version tag.
    ecr = boto3.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=["shipyard/digits"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="shipyard/digits")["lifecyclePolicyText"])["rules"]
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [TAG]
    images = ecr.describe_images(repositoryName="shipyard/digits")["imageDetails"]
    assert [i["imageTags"] for i in images] == [[version]]
    pushed = registry.manifest("shipyard/digits", version)
    assert pushed.status_code == 200
    assert json.loads(pushed.text)["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert record.image == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard/digits:{version}"

    # S3: model.tar.gz encrypted and tagged, under this deployment's prefix.
    s3 = boto3.client("s3")
    key = f"shipyard/digits/{version}/model.tar.gz"
    assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [TAG]

    # SageMaker: model → config → endpoint with the options passed through.
    sm = boto3.client("sagemaker")
    model = sm.describe_model(ModelName=f"digits-{version}")
    assert model["PrimaryContainer"]["Image"] == record.image
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/{key}"
    assert model["PrimaryContainer"]["Environment"] == {
        "LOG_FORMAT": "json",
        "API_TOKEN_HINT": "visible-env-value",
        "SAGEMAKER_REGION": REGION,
        "SHIPYARD_SECRETS": "DB_PASSWORD=db/password",
    }
    assert model["ExecutionRoleArn"] == role["Arn"]
    config = sm.describe_endpoint_config(EndpointConfigName=f"digits-{version}")
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": f"digits-{version}",
            "InitialInstanceCount": 2,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0,
            "ContainerStartupHealthCheckTimeoutInSeconds": 900,
        }
    ]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 25
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{bucket}/shipyard/digits/capture"
    described = sm.describe_endpoint(EndpointName="digits")
    assert described["EndpointConfigName"] == f"digits-{version}"
    for arn in (described["EndpointArn"], config["EndpointConfigArn"], model["ModelArn"]):
        assert TAG in sm.list_tags(ResourceArn=arn)["Tags"]

    # Logs: retention set (SageMaker's own group would never expire), tagged.
    logs = boto3.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/digits")["logGroups"]
    assert group["retentionInDays"] == 30

    # Autoscaling: 2–4 instances, target = 20 req/s × 0.5 × 60 invocations per instance per minute.
    scaling = boto3.client("application-autoscaling")
    (scalable,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (scalable["ResourceId"], scalable["MinCapacity"], scalable["MaxCapacity"]) == (
        "endpoint/digits/variant/AllTraffic",
        2,
        4,
    )
    (scaling_policy,) = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = scaling_policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 600.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"

    # The state names every resource and holds no secret or --env value.
    text = state_path.read_text()
    assert "hunter2-value" not in text and "visible-env-value" not in text
    kinds = [r.kind for r in record.resources]
    assert sorted(set(kinds)) == sorted(
        ["role", "log-group", "ecr-repository", "s3-prefix", "model", "endpoint-config", "endpoint", "autoscaling",
         "alarm", "dashboard"]
    )  # fmt: skip
    assert record.env_keys == ["API_TOKEN_HINT", "LOG_FORMAT"]
    assert set(tagged_everywhere()) == {"sagemaker", "iam", "ecr", "logs", "s3", "autoscaling", "cloudwatch"}

    # Cleanup removes every tagged resource, and a second cleanup is a no-op error-free.
    before = target.aws(REGION).total_calls
    report = deployer.cleanup("digits")
    cleanup_calls = target.aws(REGION).total_calls - before
    assert tagged_everywhere() == {}
    assert deployer.state.get("digits") is None
    assert len(report.deleted) == 8 + 6 + 1 and report.already_gone == []  # and 6 alarms, the dashboard
    assert deploy_calls > 0 and cleanup_calls > 0


def test_serverless_bakes_the_model_into_the_image_and_uploads_nothing(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, serverless=Serverless(2048, 10)))
    record = deployer.record("digits")
    sm = boto3.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=record.details.endpoint_config)
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": record.details.model,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 10},
        }
    ]
    model = sm.describe_model(ModelName=record.details.model)
    assert "ModelDataUrl" not in model["PrimaryContainer"]
    assert not [r for r in record.resources if r.kind == "s3-prefix"]
    assert record.serverless == {"memory_mb": 2048, "max_concurrency": 10}
    assert deployer.status("digits")[0].size == "serverless 2048 MB × 10"
    deployer.cleanup("digits")
    assert tagged_everywhere() == {}
