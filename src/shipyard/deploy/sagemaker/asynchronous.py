"""``deploy --async --target sagemaker``: the endpoint config's ``AsyncInferenceConfig``, the container's limits
raised to async's (an hour, 1 GB), the role's access to the queue's S3 locations and SNS topics, and autoscaling
on the backlog (``ApproximateBacklogSizePerInstance``), down to zero instances when asked.

| where                                  | default                                  |
|----------------------------------------|------------------------------------------|
| OutputConfig.S3OutputPath              | ``s3://BUCKET/async/NAME/output``         |
| OutputConfig.S3FailurePath             | ``s3://BUCKET/async/NAME/failure``        |
| the inputs ``shipyard invoke --async`` uploads | ``s3://BUCKET/async/NAME/input/``  |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.cloud.cloudwatch import AlarmSpec
from shipyard.cloud.s3 import parse_s3_uri
from shipyard.deploy.asynchronous import async_environment
from shipyard.deploy.options import AsyncInference
from shipyard.errors import SpecError

__all__ = [
    "BACKLOG_METRIC",
    "async_environment",
    "async_inference_config",
    "async_paths",
    "async_statements",
    "backlog_metric",
    "from_zero_alarm",
    "input_prefix",
    "resolve_topics",
]

BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"  # 1 while requests wait and no instance runs


def input_prefix(bucket: str, name: str) -> str:
    """Where ``shipyard invoke --async`` uploads the inputs of deployment ``name`` (an S3 URI, ``/``-ended)."""
    return f"s3://{bucket}/async/{name}/input/"


def async_paths(settings: AsyncInference, bucket: str, name: str) -> tuple[str, str]:
    """(S3OutputPath, S3FailurePath): the ones given, else this deployment's under ``async/NAME/``."""
    return (
        settings.output_path or f"s3://{bucket}/async/{name}/output",
        settings.failure_path or f"s3://{bucket}/async/{name}/failure",
    )


def resolve_topics(settings: AsyncInference, find: Any, exists: Any) -> dict[str, str]:
    """The success and error topics as ARNs: an ARN must exist, a name is looked up in the region
    (``find(name) -> ARN | None``, ``exists(arn) -> bool``: the SNS gateway's)."""
    topics: dict[str, str] = {}
    for role, option, topic in (
        ("success", "notify_success", settings.success_topic),
        ("error", "notify_error", settings.error_topic),
    ):
        if topic is None:
            continue
        if topic.startswith("arn:"):
            if not exists(topic):
                raise SpecError(
                    f"{option} {topic}: there is no such SNS topic (in this account and region)", option=option
                )
            topics[role] = topic
            continue
        arn = find(topic)
        if arn is None:
            raise SpecError(
                f"{option} {topic}: no SNS topic of that name in this region; create it (aws sns create-topic "
                f"--name {topic}) or give its ARN",
                option=option,
            )
        topics[role] = str(arn)
    return topics


def async_inference_config(
    settings: AsyncInference, *, bucket: str, name: str, topics: Mapping[str, str]
) -> dict[str, Any]:
    """CreateEndpointConfig's ``AsyncInferenceConfig``."""
    output, failure = async_paths(settings, bucket, name)
    output_config: dict[str, Any] = {"S3OutputPath": output, "S3FailurePath": failure}
    notification = {
        key: topics[role] for key, role in (("SuccessTopic", "success"), ("ErrorTopic", "error")) if role in topics
    }
    if notification:
        output_config["NotificationConfig"] = notification
    config: dict[str, Any] = {"OutputConfig": output_config}
    if settings.max_concurrent is not None:
        config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": settings.max_concurrent}
    return config


def async_statements(
    settings: AsyncInference, *, partition: str, bucket: str, name: str, topics: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The execution role's access for the queue: read the inputs, write answers and failures, publish to the
    topics (SageMaker does each with the endpoint's role)."""
    output, failure = async_paths(settings, bucket, name)
    in_bucket, in_key = parse_s3_uri(input_prefix(bucket, name))
    written = [_objects_under(partition, uri) for uri in (output, failure)]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AsyncReadInput",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::{in_bucket}/{in_key}*",
        },
        {"Sid": "AsyncWriteOutput", "Effect": "Allow", "Action": "s3:PutObject", "Resource": sorted(set(written))},
    ]
    if topics:
        statements.append(
            {"Sid": "AsyncNotify", "Effect": "Allow", "Action": "sns:Publish", "Resource": sorted(set(topics.values()))}
        )
    return statements


def _objects_under(partition: str, uri: str) -> str:
    """``arn:aws:s3:::BUCKET/PREFIX/*``: every object under an S3 URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    key = key.strip("/")
    return f"arn:{partition}:s3:::{bucket}/{key + '/' if key else ''}*"


def from_zero_alarm(name: str, endpoint: str) -> AlarmSpec:
    """The alarm that starts the first instance of an endpoint scaled to zero: ``HasBacklogWithoutCapacity``
    ≥ 1 for 2 of 2 minutes (AWS's guide: "Optional: define a scaling policy that scales up from zero for new
    requests"); without it target tracking scales out only once the backlog exceeds its target."""
    return AlarmSpec(
        name=name,
        metric=NO_CAPACITY_METRIC,
        namespace="AWS/SageMaker",
        dimensions={"EndpointName": endpoint},
        threshold=1,
        evaluation_periods=2,
        datapoints=2,
        period_s=60,
        statistic="Average",
        comparison="GreaterThanOrEqualToThreshold",
        description=f"Shipyard: requests wait on {endpoint} with no instance running: start one",
        missing_data="missing",
    )


def backlog_metric(endpoint: str) -> dict[str, Any]:
    """Target tracking's ``CustomizedMetricSpecification`` for an async endpoint's queue per instance."""
    return {
        "MetricName": BACKLOG_METRIC,
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
        "Statistic": "Average",
    }
