"""Failures on the sagemaker target: half-way refusals, Failed endpoints, updates and their rollback.

moto makes endpoints InService at once and answers UpdateEndpoint with HTTP 500 (not implemented), so
these tests answer DescribeEndpoint / UpdateEndpoint / CreateEndpoint from a script (botocore's Stubber
mechanism at that one operation, see scripted.py); every other call goes to the moto server.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_deploy_sagemaker import make, spec, tagged_everywhere

from infra.moto import REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer, error
from shipyard.deploy.options import Autoscale
from shipyard.errors import CloudError, DeployFailed

pytestmark = pytest.mark.integration


def test_create_endpoint_refused_rolls_back_everything_but_the_log_group(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target, _ = make(state_path)
    sagemaker = target.aws(REGION).client("sagemaker")
    answer(sagemaker, "CreateEndpoint", error("ResourceLimitExceeded", "account-level service limit 'ml.m5.large'"))
    with pytest.raises(CloudError, match="ResourceLimitExceeded") as raised:
        deployer.deploy(spec(digits_bundle, small_image, registry))
    assert "Service Quotas" in str(raised.value)
    # Nothing orphaned: only the log group is left, and the state names it.
    assert tagged_everywhere() == {"logs": ["/aws/sagemaker/Endpoints/digits"]}
    record = deployer.record("digits")
    assert record.status == "Failed" and "ResourceLimitExceeded" in (record.failure or "")
    assert [(r.kind, r.id) for r in record.resources] == [("log-group", "/aws/sagemaker/Endpoints/digits")]
    # The same name is refused until cleanup, which completes.
    with pytest.raises(Exception, match="already exists"):
        deployer.deploy(spec(digits_bundle, small_image, registry))
    deployer.cleanup("digits")
    assert tagged_everywhere() == {}
    assert deployer.state.get("digits") is None


def test_cleanup_resumes_after_a_partial_failure(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry))
    iam = target.aws(REGION).client("iam")
    calls = answer(iam, "DeleteRole", error("DeleteConflict", "Cannot delete entity, must detach all policies first."))
    with pytest.raises(CloudError, match="DeleteConflict"):
        deployer.cleanup("digits")
    assert calls  # it stopped at the role: everything before it is gone, the role and the log group remain
    record = deployer.record("digits")
    assert [r.kind for r in record.resources] == ["role", "log-group"]
    assert set(tagged_everywhere()) == {"iam", "logs"}
    deployer2, _, _ = make(state_path)
    report = deployer2.cleanup("digits")
    assert tagged_everywhere() == {}
    assert sorted(report.deleted) == ["log-group /aws/sagemaker/Endpoints/digits", "role shipyard-digits"]


def test_failed_endpoint_shows_reason_and_log_tail_then_rolls_back(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target, steps = make(state_path)
    logs = boto3.client("logs")

    def creating(params: dict[str, Any]) -> dict[str, Any]:
        # What the container writes while SageMaker health-checks it.
        group = "/aws/sagemaker/Endpoints/digits"
        stream = "AllTraffic/i-0123456789"
        if not logs.describe_log_streams(logGroupName=group)["logStreams"]:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            now = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[
                    {"timestamp": now, "message": "ModuleNotFoundError: No module named 'xgboost'"},
                    {"timestamp": now + 1, "message": "a worker could not load the model; stopping"},
                ],
            )
        return {
            "EndpointName": "digits",
            "EndpointArn": "arn",
            "EndpointStatus": "Creating",
            "CreationTime": 0,
            "LastModifiedTime": 0,
        }

    failed = {
        "EndpointName": "digits",
        "EndpointArn": "arn",
        "EndpointStatus": "Failed",
        "CreationTime": 0,
        "LastModifiedTime": 0,
        "FailureReason": "The primary container for production variant AllTraffic did not pass the ping "
        "health check. Please check CloudWatch logs for this endpoint.",
    }
    sagemaker = target.aws(REGION).client("sagemaker")
    # The first DescribeEndpoint is the "already exists?" check before anything is created.
    answer(
        sagemaker,
        "DescribeEndpoint",
        error("ValidationException", "Could not find endpoint digits"),
        creating,
        creating,
        failed,
    )
    with pytest.raises(DeployFailed) as raised:
        deployer.deploy(spec(digits_bundle, small_image, registry))
    failure = raised.value
    assert "did not pass the ping health check" in str(failure)
    assert "likely cause" in str(failure) and "--startup-timeout" in str(failure)
    assert failure.log_tail[-1].endswith("a worker could not load the model; stopping")
    assert "No module named 'xgboost'" in failure.log_tail[0]
    assert steps.states == ["Creating", "Creating", "Failed"]
    assert tagged_everywhere() == {"logs": ["/aws/sagemaker/Endpoints/digits"]}
    deployer.cleanup("digits")
    assert tagged_everywhere() == {}


def _emulate_update(target: Any, states: list[str], *, on_fail_keep_old: bool = False) -> dict[str, list[Any]]:
    """UpdateEndpoint and DescribeEndpoint answered from a script that follows the configs asked for."""
    sagemaker = target.aws(REGION).client("sagemaker")
    current = {"config": sagemaker.describe_endpoint(EndpointName="digits")["EndpointConfigName"]}
    asked: list[str] = []
    script = list(states)

    def update(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params["EndpointConfigName"])
        if not (on_fail_keep_old and len(asked) == 1):
            current["config"] = params["EndpointConfigName"]
        return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/digits"}

    def describe(params: dict[str, Any]) -> dict[str, Any]:
        state = script.pop(0) if len(script) > 1 else script[0]
        answer_ = {
            "EndpointName": "digits",
            "EndpointArn": "arn",
            "EndpointStatus": state,
            "CreationTime": 0,
            "LastModifiedTime": 0,
            "EndpointConfigName": current["config"],
        }
        if state == "Failed":
            answer_["FailureReason"] = "the new container failed the ping health check"
        return answer_

    answer(sagemaker, "UpdateEndpoint", update)
    answer(sagemaker, "DescribeEndpoint", describe)
    return {"asked": asked}


def test_update_replaces_the_version_and_deletes_the_old_one(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _target, _ = make(state_path)
    deployer.deploy(
        spec(digits_bundle, small_image, registry, instance_count=2, autoscale=Autoscale(1, 3, 10.0), env={"MODE": "a"})
    )
    old = dataclasses.replace(deployer.record("digits").details)
    time.sleep(1.1)  # versions are per second
    deployer2, target2, _steps = make(state_path)
    emulated = _emulate_update(target2, ["Updating", "Updating", "InService"])
    deployer2.update("digits", str(digits_bundle), image=small_image)
    record = deployer2.record("digits")
    assert emulated["asked"] == [record.details.endpoint_config] != [old.endpoint_config]
    sm = boto3.client("sagemaker")
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert configs == [record.details.endpoint_config] and models == [record.details.model]
    # Settings not named in the update stay: instance count, autoscaling, --env (read back from the live model).
    config = sm.describe_endpoint_config(EndpointConfigName=record.details.endpoint_config)
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    env = sm.describe_model(ModelName=record.details.model)["PrimaryContainer"]["Environment"]
    assert env["MODE"] == "a"
    (policy,) = boto3.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 300.0
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=old.bucket)["Contents"]]
    assert keys == [f"shipyard/digits/{record.details.version}/model.tar.gz"]
    assert [r.kind for r in record.resources].count("endpoint-config") == 1
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_failed_update_rolls_back_to_the_previous_config(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry))
    old = dataclasses.replace(deployer.record("digits").details)
    time.sleep(1.1)
    deployer2, target2, _ = make(state_path)
    emulated = _emulate_update(target2, ["Updating", "Failed", "Updating", "InService"])
    with pytest.raises(DeployFailed, match=f"back on {old.endpoint_config}"):
        deployer2.update("digits", str(digits_bundle), image=small_image)
    new_config = emulated["asked"][0]
    assert emulated["asked"] == [new_config, old.endpoint_config]  # the update, then the rollback
    record = deployer2.record("digits")
    assert record.status == "InService" and record.details.endpoint_config == old.endpoint_config
    sm = boto3.client("sagemaker")
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [old.endpoint_config]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [old.model]
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}
