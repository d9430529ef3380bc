"""Bad input is refused with a clear message before anything is created; the dry run creates nothing."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from test_deploy_sagemaker import make, spec, tagged_everywhere

from infra.moto import REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer, error
from shipyard.deploy.options import Autoscale, DeployOptions, SecretRef, Serverless, parse_env, parse_ttl
from shipyard.errors import CredentialsError, SpecError


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 64, "at most 63"),
        ("my_model", "not a valid endpoint name"),
        ("-digits", "not a valid endpoint name"),
        ("digits-", "not a valid endpoint name"),
        ("", "needs a name"),
    ],
)
def test_names_sagemaker_would_reject(name: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        DeployOptions(source=".", name=name)


def test_a_63_character_name_fits_every_derived_resource_name() -> None:
    from shipyard.deploy.sagemaker.names import Names

    names = Names("a" * 63)
    assert len(names.model("20261123-130501")) <= 63 and len(names.endpoint_config("20261123-130501")) <= 63
    assert len(names.role) <= 64
    assert names.model("20261123-130501") != Names("a" * 62 + "b").model("20261123-130501")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("512:10", "1024, 2048"),
        ("2000:10", "1024, 2048"),
        ("7168:1", "1024"),
        ("2048:0", "1 to 200"),
        ("2048:201", "1 to 200"),
        ("big", "MEMORY_MB:MAX_CONCURRENCY"),
    ],
)
def test_serverless_limits(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Serverless.parse(text)


def test_serverless_within_limits_and_conflicting_options() -> None:
    assert Serverless.parse("6144:200") == Serverless(6144, 200)
    with pytest.raises(SpecError, match="drop --autoscale"):
        DeployOptions(".", "x", target="sagemaker", serverless=Serverless(1024, 1), autoscale=Autoscale(1, 2, 5))
    with pytest.raises(SpecError, match="not available on serverless"):
        DeployOptions(".", "x", target="sagemaker", serverless=Serverless(1024, 1), data_capture_pct=5)


def test_unknown_instance_type_suggests_the_close_ones() -> None:
    with pytest.raises(SpecError, match=r"did you mean ml\.m5\.large"):
        DeployOptions(".", "x", target="sagemaker", instance_type="ml.m5.largee")
    with pytest.raises(SpecError, match="not a SageMaker hosting instance type"):
        DeployOptions(".", "x", target="sagemaker", instance_type="m5.large")


def test_other_options() -> None:
    with pytest.raises(SpecError, match="needs --max-rps"):
        Autoscale.parse("1:4", None)
    with pytest.raises(SpecError, match="1 <= MIN <= MAX"):
        Autoscale.parse("4:1", 10)
    assert Autoscale.parse("1:4", 20).target_per_minute == 600.0
    with pytest.raises(SpecError, match="outside --autoscale"):
        DeployOptions(".", "x", target="sagemaker", instance_count=5, autoscale=Autoscale(1, 4, 10))
    with pytest.raises(SpecError, match="60 to 3600"):
        DeployOptions(".", "x", startup_timeout_s=5)
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_env(["NOEQUALS"])
    with pytest.raises(SpecError, match="--secret"):
        parse_env(["SHIPYARD_SECRETS=x"])
    assert SecretRef.parse("db/password") == SecretRef("db/password", "DB_PASSWORD")
    assert SecretRef.parse("TOKEN=prod/api") == SecretRef("prod/api", "TOKEN")
    assert parse_ttl("2h") is not None and parse_ttl("2h").total_seconds() == 7200  # type: ignore[union-attr]
    with pytest.raises(SpecError, match=r"e\.g\. 90m"):
        parse_ttl("two hours")
    with pytest.raises(SpecError, match="choose one of"):
        DeployOptions(".", "x", target="kubernetes")


@pytest.mark.integration
def test_missing_credentials_are_caught_before_anything_is_created(
    aws: object,
    digits_bundle: Path,
    small_image: str,
    registry: OciRegistry,
    state_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    deployer, target, _ = make(state_path)
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        deployer.deploy(spec(digits_bundle, small_image, registry))
    assert target.aws(REGION).total_calls == 0  # not one request was sent
    assert deployer.state.all() == []


@pytest.mark.integration
def test_unknown_region_and_a_region_the_account_cannot_use(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    with pytest.raises(SpecError, match="has no sagemaker service"):
        deployer.deploy(spec(digits_bundle, small_image, registry, region="xx-nowhere-1"))
    # An opt-in region not enabled for the account: STS refuses the (valid) credentials there. moto accepts
    # any region, so STS's answer is scripted (the Stubber mechanism at that one call).
    deployer, target, _ = make(state_path)
    answer(
        target.aws(REGION).client("sts"),
        "GetCallerIdentity",
        error("InvalidClientTokenId", "The security token included in the request is invalid.", 403),
    )
    with pytest.raises(CredentialsError, match="no access to this region"):
        deployer.deploy(spec(digits_bundle, small_image, registry))
    assert tagged_everywhere() == {}
    assert deployer.state.all() == []


@pytest.mark.integration
def test_missing_secret_and_existing_endpoint_are_refused_first(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    with pytest.raises(SpecError, match="no such secret"):
        deployer.deploy(spec(digits_bundle, small_image, registry, secrets=(SecretRef.parse("db/missing"),)))
    assert tagged_everywhere() == {}
    # An endpoint of that name made outside Shipyard (moto would overwrite it silently; AWS refuses).
    sm = boto3.client("sagemaker")
    sm.create_model(
        ModelName="other", PrimaryContainer={"Image": "x"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
    )
    sm.create_endpoint_config(
        EndpointConfigName="other",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "other", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="digits", EndpointConfigName="other")
    with pytest.raises(SpecError, match="already exists in us-east-1"):
        deployer.deploy(spec(digits_bundle, small_image, registry))
    assert tagged_everywhere() == {}


@pytest.mark.integration
def test_dry_run_prints_the_plan_with_costs_and_creates_nothing(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    plan = deployer.plan(spec(digits_bundle, small_image, registry, instance_count=2))
    kinds = [r.kind for r in plan.resources]
    assert kinds == [
        "IAM role",
        "CloudWatch log group",
        "ECR repository",
        "ECR image",
        "S3 object",
        "SageMaker model",
        "SageMaker endpoint config",
        "SageMaker endpoint",
        *["CloudWatch alarm"] * 6,
        "CloudWatch dashboard",
    ]
    endpoint_cost = plan.resources[7].monthly_usd
    assert endpoint_cost == pytest.approx(2 * 0.115 * 730)
    assert plan.monthly_usd == pytest.approx(endpoint_cost + 7 * 0.10 + 3.00)  # 4xx rate: 2 metrics
    assert "2024-06" in plan.price_label
    assert tagged_everywhere() == {} and deployer.state.all() == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []
