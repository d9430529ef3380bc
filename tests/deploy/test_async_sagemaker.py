"""``deploy --async`` on the sagemaker target against a moto server: the endpoint config's AsyncInferenceConfig,
the model's environment, the role's statements and backlog autoscaling down to zero, each request checked
against botocore's shapes (tests/infra/aws_shapes.py) and read back from moto field by field; and
``invoke --async`` / ``results`` / ``predict_async`` through InvokeEndpointAsync and S3.

These run the real create steps (``create_version``, ``attach_autoscaling``) without an image build: the image
URI is only a string to CreateModel, and moto accepts it (the full deploy with an image is
tests/deploy/test_deploy_sagemaker.py). moto implements InvokeEndpointAsync as bookkeeping: it runs no model and
ignores the config's S3OutputPath, answering with an OutputLocation in a bucket of its own where it writes a
canned result (``{"default": "response"}``, or the ones queued through ``/moto-api/static/sagemaker/
async-endpoint-results``, which is how the failure is made here). Nothing is scripted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infra.aws_shapes import check_params
from infra.moto import ACCOUNT, REGION, MotoServer
from shipyard.cloud import Aws
from shipyard.cloud.session import deployment_tags
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.base import DeployRun, SilentReporter
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.images import ResolvedImage
from shipyard.deploy.options import AsyncInference, Autoscale, Serverless
from shipyard.deploy.sagemaker import SageMakerTarget, create
from shipyard.deploy.sagemaker import cleanup as cleanup_steps
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import Names
from shipyard.deploy.state import Deployment, StateStore, now_utc
from shipyard.errors import InvokeError, SpecError

BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard/digits:v1"


# -- the options, checked when made (no AWS) ------------------------------------------------------------------
def test_async_options_parse_and_refuse_what_sagemaker_refuses() -> None:
    parsed = DeployOptions.parse(
        "bundle", "digits", target="sagemaker", async_inference=True, async_output="s3://answers/digits",
        notify_success="done-topic", max_concurrent=8, invocation_timeout=1800, autoscale="0:4",
    )  # fmt: skip
    assert parsed.asynchronous == AsyncInference(
        output_path="s3://answers/digits", success_topic="done-topic", max_concurrent=8, invocation_timeout_s=1800
    )
    assert parsed.autoscale is not None and (parsed.autoscale.minimum, parsed.autoscale.maximum) == (0, 4)
    kept = DeployOptions.from_json(parsed.to_json(), source="bundle", name="digits", target="sagemaker")
    assert kept.asynchronous == parsed.asynchronous  # the state file keeps it

    with pytest.raises(SpecError, match="serverless endpoints do not take asynchronous inference") as refused:
        DeployOptions.parse("b", "d", target="sagemaker", async_inference=True, serverless="2048:10")
    assert refused.value.option == "serverless"
    with pytest.raises(SpecError, match="only an asynchronous endpoint") as zero:
        DeployOptions(source="b", name="d", target="sagemaker", autoscale=Autoscale(0, 4, 10.0))
    assert zero.value.option == "autoscale"
    with pytest.raises(SpecError, match="asynchronous inference allows 1 to 3600 seconds"):
        DeployOptions.parse("b", "d", async_inference=True, invocation_timeout=3601)
    with pytest.raises(SpecError, match=r"1 to 1000 \(MaxConcurrentInvocationsPerInstance\)"):
        DeployOptions.parse("b", "d", async_inference=True, max_concurrent=0)
    with pytest.raises(SpecError, match="an S3 URI") as uri:
        DeployOptions.parse("b", "d", async_inference=True, async_output="/tmp/out")
    assert uri.value.option == "async_output"
    with pytest.raises(SpecError, match="notify_error is an asynchronous endpoint's setting: add --async"):
        DeployOptions.parse("b", "d", notify_error="topic")
    with pytest.raises(SpecError, match="only an asynchronous endpoint"):
        DeployOptions.parse("b", "d", target="sagemaker", autoscale="0:4", max_rps=10)
    with pytest.raises(SpecError, match="autoscale needs --max-rps"):  # real-time still needs it
        DeployOptions.parse("b", "d", target="sagemaker", autoscale="1:4")
    assert Serverless(2048, 10)  # (serverless alone is still fine)


def test_the_dry_run_plan_shows_where_answers_go() -> None:
    from infra.cli import shipyard

    done = shipyard(
        "deploy", "bundle", "--name", "digits", "--target", "sagemaker", "--region", "us-east-1", "--async",
        "--max-concurrent", "4", "--autoscale", "0:2", "--image", "example:1", "--dry-run",
        env={"COLUMNS": "200"}, drop=("AWS_",),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "async inference" in done.stdout and "s3://sagemaker-us-east-1-ACCOUNT/async/digits/output" in done.stdout
    assert "4 at once per instance" in done.stdout


def test_the_cli_names_the_flags_of_async_refusals() -> None:
    from infra.cli import shipyard

    done = shipyard("deploy", "bundle", "--name", "d", "--target", "sagemaker", "--async", "--serverless", "2048:10")
    assert done.returncode == 2 and "--serverless" in done.stderr and "asynchronous" in done.stderr
    late = shipyard("deploy", "bundle", "--name", "d", "--invocation-timeout", "7200", "--async")
    assert late.returncode == 2 and "--invocation-timeout 7200" in late.stderr


# -- against moto ---------------------------------------------------------------------------------------------
def _capture(aws: Aws, event: str) -> list[dict[str, Any]]:
    """The parameters of every ``event`` call made through ``aws``'s clients (made after this)."""
    calls: list[dict[str, Any]] = []
    aws.session.events.register(f"provide-client-params.{event}", lambda params, **_: calls.append(dict(params)))
    return calls


def _run(options: DeployOptions) -> DeployRun:
    now = now_utc().isoformat()
    record = Deployment(options.name, "sagemaker", "Creating", options.source, now, now, region=REGION)
    record.details.role_arn = f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-digits"
    return DeployRun(options, record, lambda _record: None, SilentReporter())


def test_deploy_async_writes_async_inference_config_and_backlog_autoscaling(aws: MotoServer) -> None:
    sns = boto3.client("sns")
    done_arn = sns.create_topic(Name="digits-done")["TopicArn"]
    error_arn = sns.create_topic(Name="digits-errors")["TopicArn"]
    options = DeployOptions(
        source="bundle", name="digits", target="sagemaker", region=REGION, instance_count=1,
        autoscale=Autoscale(0, 4, 1.0),
        asynchronous=AsyncInference(success_topic="digits-done", error_topic=error_arn, max_concurrent=4,
                                    invocation_timeout_s=1800),
    )  # fmt: skip
    ctx = Context(Aws(REGION), Names("digits"), deployment_tags("digits"))
    configs = _capture(ctx.aws, "sagemaker.CreateEndpointConfig")
    models = _capture(ctx.aws, "sagemaker.CreateModel")
    policies = _capture(ctx.aws, "application-autoscaling.PutScalingPolicy")
    targets = _capture(ctx.aws, "application-autoscaling.RegisterScalableTarget")
    alarm_calls = _capture(ctx.aws, "cloudwatch.PutMetricAlarm")

    checks = create.preflight(ctx, options)
    assert checks.topics == {"success": done_arn, "error": error_arn}  # the name looked up, the ARN checked
    run = _run(options)
    version = create.Version("v1", ResolvedImage(IMAGE, None, built=False), checks)
    create.create_version(ctx, run, version, image_uri=IMAGE)

    (config_call,) = configs
    check_params("sagemaker", "CreateEndpointConfig", config_call)
    expected = {
        "OutputConfig": {
            "S3OutputPath": f"s3://{BUCKET}/async/digits/output",
            "S3FailurePath": f"s3://{BUCKET}/async/digits/failure",
            "NotificationConfig": {"SuccessTopic": done_arn, "ErrorTopic": error_arn},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    assert config_call["AsyncInferenceConfig"] == expected
    described = boto3.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=run.record.details.endpoint_config
    )
    assert described["AsyncInferenceConfig"] == expected
    assert described["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"  # on instances, not serverless

    (model_call,) = models
    check_params("sagemaker", "CreateModel", model_call)
    environment = boto3.client("sagemaker").describe_model(ModelName=run.record.details.model)["PrimaryContainer"][
        "Environment"
    ]
    assert environment == {
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "1800",  # the server's own limit matches the request's
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1024",
        "SAGEMAKER_REGION": REGION,
    }

    policy = create.role_policy(ctx, options, checks)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["AsyncReadInput"] == {
        "Sid": "AsyncReadInput", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/async/digits/input/*",
    }  # fmt: skip
    assert by_sid["AsyncWriteOutput"]["Resource"] == [
        f"arn:aws:s3:::{BUCKET}/async/digits/failure/*",
        f"arn:aws:s3:::{BUCKET}/async/digits/output/*",
    ]
    assert by_sid["AsyncNotify"] == {
        "Sid": "AsyncNotify", "Effect": "Allow", "Action": "sns:Publish", "Resource": sorted([done_arn, error_arn]),
    }  # fmt: skip

    # `shipyard export` carries it into CloudFormation/CDK/Terraform (the writers: tests/deploy/test_export_iac.py)
    from shipyard.deploy.export.collect import _Collector

    collector = _Collector(ctx, run.record)
    collector.endpoint_config()
    (exported,) = [r for r in collector.stack.resources if r.type == "AWS::SageMaker::EndpointConfig"]
    assert exported.properties["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    assert set(exported.properties["AsyncInferenceConfig"]["OutputConfig"]) == {
        "S3OutputPath", "S3FailurePath", "NotificationConfig",
    }  # fmt: skip

    ctx.sagemaker.create_endpoint("digits", config=run.record.details.endpoint_config or "", tags=ctx.tag_list)
    create.attach_autoscaling(ctx, run)
    (target_call,) = targets
    check_params("application-autoscaling", "RegisterScalableTarget", target_call)
    assert (target_call["MinCapacity"], target_call["MaxCapacity"]) == (0, 4)
    policy_call, step_call = policies
    check_params("application-autoscaling", "PutScalingPolicy", policy_call)
    check_params("application-autoscaling", "PutScalingPolicy", step_call)
    scaling = boto3.client("application-autoscaling")
    (scalable,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (scalable["ResourceId"], scalable["MinCapacity"], scalable["MaxCapacity"]) == (
        "endpoint/digits/variant/AllTraffic", 0, 4,
    )  # fmt: skip
    stored, step = sorted(
        scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"],
        key=lambda p: p["PolicyType"] != "TargetTrackingScaling",
    )
    tracking = stored["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 5.0
    assert tracking["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": "digits"}],
        "Statistic": "Average",
    }
    assert "PredefinedMetricSpecification" not in tracking

    # out of zero: a step policy (+1 instance) started by an alarm on HasBacklogWithoutCapacity (AWS's guide)
    assert (step["PolicyName"], step["PolicyType"]) == ("shipyard-digits-invocations-from-zero", "StepScaling")
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    }
    (alarm_call,) = alarm_calls
    check_params("cloudwatch", "PutMetricAlarm", alarm_call)
    cloudwatch = boto3.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["shipyard-digits-HasBacklogWithoutCapacity"])["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Namespace"], alarm["Statistic"]) == (
        "HasBacklogWithoutCapacity", "AWS/SageMaker", "Average",
    )  # fmt: skip
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "digits"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1.0, "GreaterThanOrEqualToThreshold")
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (60, 2, 2)
    assert alarm["AlarmActions"] == [step["PolicyARN"]] and alarm["OKActions"] == []
    assert alarm["TreatMissingData"] == "missing"
    assert [r.id for r in run.record.of("scaling-alarm")] == ["shipyard-digits-HasBacklogWithoutCapacity"]

    run.record.add("endpoint", "digits")
    collector.autoscaling()  # export: the backlog policy (the step policy and its alarm are not exported yet)
    (exported_policy,) = [
        r for r in collector.stack.resources if r.type == "AWS::ApplicationAutoScaling::ScalingPolicy"
    ]
    exported_tracking = exported_policy.properties["TargetTrackingScalingPolicyConfiguration"]
    assert exported_tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"

    # cleanup deletes the deployment's async/NAME/ prefix (inputs, and answers and errors kept there)
    assert f"s3://{BUCKET}/async/digits/" in [r.id for r in run.record.of("s3-prefix")]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="async/digits/output/x.out", Body=b"[1]")
    cleanup_steps.cleanup(ctx, run.record, run.saver, run.reporter)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="async/digits/").get("KeyCount") == 0
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_a_missing_topic_is_refused_before_anything_is_created(aws: MotoServer) -> None:
    options = DeployOptions(
        source="b", name="digits", target="sagemaker", region=REGION,
        asynchronous=AsyncInference(error_topic="no-such-topic"),
    )  # fmt: skip
    ctx = Context(Aws(REGION), Names("digits"))
    with pytest.raises(SpecError, match="notify_error no-such-topic: no SNS topic of that name") as refused:
        create.preflight(ctx, options)
    assert refused.value.option == "notify_error"
    assert boto3.client("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []


def _async_record(deployer: Deployer, *, asynchronous: bool = True) -> None:
    options = DeployOptions(
        source="b", name="digits", target="sagemaker", region=REGION,
        asynchronous=AsyncInference(invocation_timeout_s=900) if asynchronous else None,
    )  # fmt: skip
    now = now_utc().isoformat()
    record = Deployment("digits", "sagemaker", "InService", "b", now, now, region=REGION, options=options)
    record.details.bucket = BUCKET
    deployer.state.put(record)


def test_invoke_async_uploads_the_input_calls_invoke_endpoint_async_and_reads_the_outcome(
    aws: MotoServer, tmp_path: Path
) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    shared = Aws(REGION)
    calls = _capture(shared, "sagemaker-runtime.InvokeEndpointAsync")
    deployer = Deployer(
        StateStore(tmp_path / "state.json"),
        targets={"sagemaker": SageMakerTarget(EngineImages("podman"), aws=shared, poll_s=0.01)},
    )
    _async_record(deployer)
    handle = deployer.get("digits").predict_async([[0.0] * 64, [1.0] * 64], inference_id="req-1")

    (call,) = calls
    check_params("sagemaker-runtime", "InvokeEndpointAsync", call)
    input_location = f"s3://{BUCKET}/async/digits/input/req-1.json"
    assert call == {
        "EndpointName": "digits",
        "InputLocation": input_location,
        "ContentType": "application/json",
        "Accept": "application/json",
        "InferenceId": "req-1",
        "InvocationTimeoutSeconds": 900,  # the deployment's --invocation-timeout
    }
    uploaded = boto3.client("s3").get_object(Bucket=BUCKET, Key="async/digits/input/req-1.json")
    assert json.loads(uploaded["Body"].read()) == {"instances": [[0.0] * 64, [1.0] * 64]}
    assert uploaded["ServerSideEncryption"] == "AES256"
    tags = boto3.client("s3").get_object_tagging(Bucket=BUCKET, Key="async/digits/input/req-1.json")["TagSet"]
    assert {"Key": "shipyard:deployment", "Value": "digits"} in tags
    assert handle.inference_id == "req-1" and handle.output_location.startswith("s3://")
    assert handle.result(timeout=10) == {"default": "response"}  # moto's canned answer, read back from S3
    assert deployer.async_handle("digits", "req-1").output_location == handle.output_location

    # a failed one: moto writes the queued failure's text at the FailureLocation
    httpx.post(
        f"{aws.url}/moto-api/static/sagemaker/async-endpoint-results",
        json={"results": [{"is_failure": True, "data": "ModelError: the model raised ValueError"}]},
    ).raise_for_status()
    failed = deployer.invoke_async("digits", b'{"instances": [[1]]}', content_type="application/json")
    with pytest.raises(InvokeError, match="failed: ModelError: the model raised ValueError"):
        failed.result(timeout=10)


def test_invoke_async_on_a_real_time_endpoint_says_so(aws: MotoServer, tmp_path: Path) -> None:
    deployer = Deployer(
        StateStore(tmp_path / "state.json"),
        targets={"sagemaker": SageMakerTarget(EngineImages("podman"), aws=Aws(REGION), poll_s=0.01)},
    )
    _async_record(deployer, asynchronous=False)
    with pytest.raises(Exception, match="digits is a real-time endpoint: invoke it without --async"):
        deployer.invoke_async("digits", b"{}", content_type="application/json")
