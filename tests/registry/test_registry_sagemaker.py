"""The sagemaker backend against the moto server: CreateModelPackageGroup/CreateModelPackage/UpdateModelPackage
requests checked against botocore's shapes (ParamValidator, and CustomerMetadataProperties against the shapes'
length and pattern constraints), approval read back, list/show through the CLI, and a deploy of a registered
version resolved from S3.

moto (5.2.5) keeps for a model package: the InferenceSpecification, ModelMetrics, CustomerMetadataProperties,
the description, ModelApprovalStatus and ApprovalDescription. It does not: refuse a second group of the same name
(AWS does; the gateway looks before it creates), merge CustomerMetadataProperties on UpdateModelPackage (it
replaces the map; the backend sends all of it every time, right for both), implement
CustomerMetadataPropertiesToRemove (HTTP 500: not used), or put ModelApprovalStatus in ListModelPackages'
summaries (the backend describes each version).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import regex
from botocore.validate import ParamValidator

from infra.cli import shipyard
from infra.moto import ACCOUNT, REGION
from infra.train_runs import DIGEST
from shipyard.errors import RegistryError
from shipyard.experiments.record import TrainRun
from shipyard.registry import HistoryEntry, approve, open_registry, register, reject
from shipyard.registry.metadata import MAX_ENTRIES
from shipyard.registry.sagemaker import SageMakerRegistry
from shipyard.settings import Settings

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard-digits@{DIGEST}"
BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"


class Calls:
    """Every request the registry's SageMaker client sends, as botocore built it (a hook, not a stub: moto answers)."""

    def __init__(self, registry: SageMakerRegistry) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        registry.gateway.client.meta.events.register("provide-client-params.sagemaker", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.sent.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name == operation]


def valid(operation: str, params: dict[str, Any]) -> None:
    """``params`` fit the operation's input shape (types, required members, lengths and enums botocore checks)."""
    report = ParamValidator().validate(params, SAGEMAKER.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def within_metadata_limits(props: dict[str, str]) -> None:
    """SageMaker's CustomerMetadataMap: ≤ 50 entries; keys 1-128, values 1-256, each the shape's own pattern."""
    key_shape, value_shape = SAGEMAKER.shape_for("CustomerMetadataKey"), SAGEMAKER.shape_for("CustomerMetadataValue")
    assert 1 <= len(props) <= SAGEMAKER.shape_for("CustomerMetadataMap").metadata["max"] == MAX_ENTRIES
    for key, value in props.items():
        assert 1 <= len(key) <= key_shape.metadata["max"] and 1 <= len(value) <= value_shape.metadata["max"], key
        assert regex.fullmatch(key_shape.metadata["pattern"], key), key
        assert regex.fullmatch(value_shape.metadata["pattern"], value), (key, value)


@pytest.fixture
def sagemaker(aws: object, home: Path) -> SageMakerRegistry:
    registry = open_registry("sagemaker", Settings.from_env())
    assert isinstance(registry, SageMakerRegistry)
    return registry


def test_register_a_run_sends_valid_requests_and_moto_keeps_them(
    sagemaker: SageMakerRegistry, digits_run: TrainRun, tmp_path: Path
) -> None:
    calls = Calls(sagemaker)
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"accuracy": 0.97}))
    settings = Settings.from_env()
    version = register(sagemaker, "run:digits-7", "digits", settings=settings, metrics=evaluation, description="v1")
    assert (version.ref, version.status) == ("digits/1", "PendingManualApproval")
    (group,) = calls.of("CreateModelPackageGroup")
    valid("CreateModelPackageGroup", group)
    (request,) = calls.of("CreateModelPackage")
    valid("CreateModelPackage", request)
    within_metadata_limits(request["CustomerMetadataProperties"])
    (container,) = request["InferenceSpecification"]["Containers"]
    assert container["Image"] == f"localhost/shipyard-digits@{DIGEST}" and container["ImageDigest"] == DIGEST
    assert container["ModelDataUrl"].startswith(f"s3://{BUCKET}/shipyard/registry/digits/")
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    assert "text/csv" in request["InferenceSpecification"]["SupportedContentTypes"]
    assert request["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m5.large"]

    s3 = boto3.client("s3", region_name=REGION)
    statistics_uri = request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    key = statistics_uri.removeprefix(f"s3://{BUCKET}/")
    statistics = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert statistics == {"version": 0.0, "shipyard_metrics": {"accuracy": {"value": 0.97}}}  # ModelQuality's shape
    model_key = container["ModelDataUrl"].removeprefix(f"s3://{BUCKET}/")
    assert s3.head_object(Bucket=BUCKET, Key=model_key)["ContentLength"] > 0

    described = boto3.client("sagemaker", region_name=REGION).describe_model_package(ModelPackageName=version.arn)
    assert described["CustomerMetadataProperties"]["shipyard:run"] == "digits-7"
    assert described["CustomerMetadataProperties"]["shipyard:source"] == "run:digits-7"
    # read back: everything the run carried, decoded from the metadata (the odd characters escaped and restored)
    assert version.hyperparameters == {"epochs": "10", "lr": "0.1", "note": "a b=c {x}"}
    assert version.data == {"train": "sha256:" + "1" * 64, "validation": "etag:" + "2" * 32}
    assert version.code and version.code["dirty"] is True and version.code["commit"] == "c0ffee" * 6 + "ab12"
    assert version.run and version.run.tracking_run_id == "f" * 32
    assert version.metrics == {"accuracy": 0.97} and version.description == "v1"
    assert version.model_sha256 and version.model_sha256.startswith("sha256:")


def test_approve_reject_and_history_through_update_model_package(
    sagemaker: SageMakerRegistry, digits_bundle: Path
) -> None:
    settings = Settings.from_env()
    register(sagemaker, str(digits_bundle), "digits", settings=settings, image=IMAGE)
    calls = Calls(sagemaker)
    rejected = reject(sagemaker, "digits/1", "drifts on 7s")
    assert (rejected.status, rejected.approval_reason) == ("Rejected", "drifts on 7s")
    client = boto3.client("sagemaker", region_name=REGION)
    described = client.describe_model_package(ModelPackageName=rejected.arn)
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == ("Rejected", "drifts on 7s")
    assert approve(sagemaker, "digits/1", "fixed upstream").status == "Approved"  # Rejected → Approved: allowed
    with pytest.raises(RegistryError, match="Approved version to Rejected"):
        reject(sagemaker, "digits/1", "again")  # refused before any call: moto would take it, SageMaker does not
    for params in calls.of("UpdateModelPackage"):
        valid("UpdateModelPackage", params)
    assert [p["ModelApprovalStatus"] for p in calls.of("UpdateModelPackage")] == ["Rejected", "Approved"]
    described = client.describe_model_package(ModelPackageName=rejected.arn)
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == ("Approved", "fixed upstream")

    for number in range(60):  # more than the map holds: the oldest entries are left out, the count kept
        sagemaker.add_history("digits", 1, HistoryEntry.now("deploy", f"d-{number}", "local", "a détail: ok"))
    last = calls.of("UpdateModelPackage")[-1]
    valid("UpdateModelPackage", last)
    within_metadata_limits(last["CustomerMetadataProperties"])
    version = sagemaker.version("digits", 1)
    assert version.history[-1].deployment == "d-59" and version.history[-1].detail == "a détail: ok"
    assert version.customer_metadata == {} and version.source == str(digits_bundle)
    assert version.history_dropped == 60 - len(version.history) > 0
    assert int(described_props(version.arn)["shipyard:history-dropped"]) == version.history_dropped
    assert f"shipyard:history:{60:04d}" in described_props(version.arn)  # numbered from the first entry ever


def described_props(arn: str | None) -> dict[str, str]:
    client = boto3.client("sagemaker", region_name=REGION)
    return dict(client.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"])


def test_a_plain_bundle_needs_an_image(sagemaker: SageMakerRegistry, digits_bundle: Path) -> None:
    done = shipyard("register", str(digits_bundle), "--group", "digits", "--registry", "sagemaker")
    assert done.returncode == 2 and "--image" in done.stderr
    assert (
        boto3.client("sagemaker", region_name=REGION).list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    )


def parse(done: subprocess.CompletedProcess[str], schema: str) -> dict[str, Any]:
    import jsonschema

    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))
    return document


def test_the_cli_on_sagemaker_then_a_deploy_resolved_from_s3(
    aws: object, home: Path, digits_bundle: Path, tmp_path: Path
) -> None:
    sm = ("--registry", "sagemaker")
    statistics = tmp_path / "statistics.json"  # SageMaker's model quality statistics: uploaded as it is
    statistics.write_text(json.dumps({"version": 0.0, "regression_metrics": {"mse": {"value": 0.5}}}))
    made = parse(shipyard("register", str(digits_bundle), "--group", "digits", "--image", IMAGE, *sm,
                          "--metrics", str(statistics), "--output", "json"), "register.v1.json")["version"]  # fmt: skip
    assert made["registry"] == "sagemaker" and made["arn"].endswith(":model-package/digits/1")
    assert made["model"].startswith("s3://") and made["image"] == IMAGE
    assert made["metrics"] == {"mse": 0.5}  # read back from the statistics object in S3
    described = boto3.client("sagemaker", region_name=REGION).describe_model_package(ModelPackageName=made["arn"])
    key = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].removeprefix(f"s3://{BUCKET}/")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == statistics.read_bytes()
    listed = parse(shipyard("models", "list", *sm, "--output", "json"), "models-list.v1.json")
    assert [v["ref"] for v in listed["groups"][0]["versions"]] == ["digits/1"]
    refused = shipyard("deploy", "digits/1", "--name", "d1", *sm, "--dry-run", env={"COLUMNS": "300"})
    assert refused.returncode == 2 and "--allow-unapproved" in refused.stderr
    assert shipyard("models", "approve", "digits/1", *sm).returncode == 0
    shown = parse(shipyard("models", "show", "digits/1", *sm, "--output", "json"), "models-show.v1.json")
    assert shown["version"]["status"] == "Approved"
    planned = shipyard("deploy", "digits/1", "--name", "d1", *sm, "--dry-run", env={"COLUMNS": "300"})
    assert planned.returncode == 0, planned.stderr
    cached = home.parent / "cache" / "registry" / "digits" / "1" / "model.tar.gz"
    assert cached.is_file()  # the ModelDataUrl, downloaded from S3 and checked against its sha256
    from shipyard.registry.local import sha256_of

    assert sha256_of(cached) == made["model_sha256"]
