"""What a SageMaker training run asks AWS for: its names, its role's policy and its CreateTrainingJob request.

Pure functions of the options and the facts already known (account, bucket, image digest, channel URIs): no
AWS call is made here, so the request and the policy can be checked on their own (the tests validate the request
against botocore's service model and read the policy statement by statement).

| statement       | actions                                                  | resource                            |
|-----------------|----------------------------------------------------------|-------------------------------------|
| PullImage       | ecr:BatchGetImage, GetDownloadUrlForLayer, ...           | this experiment's repository        |
| EcrLogin        | ecr:GetAuthorizationToken                                | ``*`` (it takes no resource)        |
| ReadInputs      | s3:GetObject                                             | each input channel's prefix         |
| ListInputs      | s3:ListBucket (``s3:prefix`` limited to the inputs)      | the inputs' buckets                 |
| WriteOutput     | s3:PutObject                                             | the output prefix                   |
| Checkpoints     | s3:GetObject, s3:PutObject (spot, or --checkpoints)      | the checkpoint prefix               |
| WriteLogs       | logs:CreateLogGroup, CreateLogStream, PutLogEvents, ...  | ``/aws/sagemaker/TrainingJobs``     |
| PutMetrics      | cloudwatch:PutMetricData (namespace limited)             | ``*`` (it takes no resource)        |
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from shipyard.cloud.s3 import parse_s3_uri
from shipyard.cloud.session import tag_list
from shipyard.cloud.training import TRAINING_LOG_GROUP
from shipyard.deploy.sagemaker.policy import pull_image_statements, write_logs_statement
from shipyard.train.options import TrainOptions

__all__ = [
    "CHECKPOINT_PATH",
    "POLICY_NAME",
    "ROLE_PATH",
    "JobFacts",
    "TrainNames",
    "job_request",
    "training_policy",
]

CHECKPOINT_PATH = "/opt/ml/checkpoints"  # CheckpointConfig.LocalPath: SageMaker's default, the contract's folder
ROLE_PATH = "/shipyard-train/"  # apart from the endpoints' /shipyard/, which `shipyard status` reconciles
POLICY_NAME = "shipyard-training"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
_ROLE_MAX = 64
_ECR_UNSAFE = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class TrainNames:
    """The AWS names of one training run, derived from its name and its experiment's."""

    run: str
    experiment: str

    @property
    def repository(self) -> str:
        """One ECR repository per experiment (ECR names are lower case)."""
        safe = _ECR_UNSAFE.sub("-", self.experiment.lower()).strip("-._") or "default"
        return f"shipyard-train/{safe}"

    @property
    def role(self) -> str:
        """One execution role per run: its policy names exactly this run's prefixes."""
        name = f"shipyard-train-{self.run}"
        if len(name) <= _ROLE_MAX:
            return name
        digest = hashlib.sha256(self.run.encode()).hexdigest()[:6]
        return f"{name[: _ROLE_MAX - 7].rstrip('-')}-{digest}"

    @property
    def prefix(self) -> str:
        """The S3 key prefix of everything this experiment's runs keep in Shipyard's bucket."""
        return f"shipyard-train/{self.repository.removeprefix('shipyard-train/')}/"

    def data_prefix(self, channel: str, digest: str) -> str:
        """Where a local channel's files go: addressed by their content, so the same data is uploaded once and a
        changed folder never mixes with an older upload another run may still read."""
        return f"{self.prefix}data/{channel}/{digest[:16]}/"

    def output_uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.prefix}output/"

    def checkpoint_uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.prefix}checkpoints/{self.run}/"


@dataclass(frozen=True)
class JobFacts:
    """What a job's request needs beyond the options, known once the image, data and role are in place."""

    image: str  # REPOSITORY_URI@sha256:…
    role_arn: str
    channels: dict[str, str]  # channel name → s3:// prefix
    output_uri: str
    checkpoint_uri: str | None
    metric_definitions: dict[str, str]  # name → regex
    hyperparameters: dict[str, str]
    tags: dict[str, str]


def job_request(options: TrainOptions, name: str, facts: JobFacts) -> dict[str, Any]:
    """CreateTrainingJob's parameters."""
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": options.max_runtime_s}
    if options.spot:
        # SageMaker requires MaxWaitTimeInSeconds with managed spot, at least the run time.
        stopping["MaxWaitTimeInSeconds"] = max(options.max_wait_s or options.max_runtime_s, options.max_runtime_s)
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": facts.image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": k, "Regex": v} for k, v in facts.metric_definitions.items()],
        },
        "RoleArn": facts.role_arn,
        "HyperParameters": facts.hyperparameters,
        "InputDataConfig": [_channel(channel, uri) for channel, uri in facts.channels.items()],
        "OutputDataConfig": {"S3OutputPath": facts.output_uri},
        "ResourceConfig": {
            "InstanceType": options.instance_type,
            "InstanceCount": options.instance_count,
            "VolumeSizeInGB": options.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": options.spot,
        "Environment": dict(options.env),
        "Tags": tag_list(facts.tags),
    }
    if facts.checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": facts.checkpoint_uri, "LocalPath": CHECKPOINT_PATH}
    if not request["AlgorithmSpecification"]["MetricDefinitions"]:
        del request["AlgorithmSpecification"]["MetricDefinitions"]
    if not request["InputDataConfig"]:  # a script that needs no data: the API takes no empty list
        del request["InputDataConfig"]
    return request


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "InputMode": "File",
    }


def training_policy(
    *,
    partition: str,
    region: str,
    account: str,
    repository: str,
    inputs: list[str],
    output_uri: str,
    checkpoint_uri: str | None,
) -> dict[str, Any]:
    """The run's role: read its inputs, write its output (and checkpoints), pull its image, write its logs."""
    s3 = f"arn:{partition}:s3:::"
    statements = pull_image_statements(partition=partition, region=region, account=account, repository=repository)
    readable = sorted({_object_arn(s3, uri) for uri in inputs})
    if readable:
        statements.append({"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject", "Resource": readable})
    listed = list(inputs) + ([checkpoint_uri] if checkpoint_uri else [])
    statements.extend(_list_statements(s3, listed))
    statements.append(
        {"Sid": "WriteOutput", "Effect": "Allow", "Action": "s3:PutObject", "Resource": _object_arn(s3, output_uri)}
    )
    if checkpoint_uri:
        statements.append(
            {
                "Sid": "Checkpoints",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": _object_arn(s3, checkpoint_uri),
            }
        )
    statements.append(
        write_logs_statement(
            partition=partition, region=region, account=account, log_group=TRAINING_LOG_GROUP, create_group=True
        )
    )
    statements.append(
        {
            "Sid": "PutMetrics",  # the metric definitions' values; PutMetricData takes no resource ARN
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def _object_arn(s3: str, uri: str) -> str:
    """The objects under an s3:// prefix (``arn:…:s3:::BUCKET/PREFIX*``); a key names itself and what follows."""
    bucket, prefix = parse_s3_uri(uri)
    return f"{s3}{bucket}/{prefix}*"


def _list_statements(s3: str, uris: list[str]) -> list[dict[str, Any]]:
    """ListBucket on each bucket, limited to the prefixes the job reads (S3Prefix channels are listed first)."""
    by_bucket: dict[str, set[str]] = defaultdict(set)
    for uri in uris:
        bucket, prefix = parse_s3_uri(uri)
        by_bucket[bucket].add(f"{prefix}*")
    return [
        {
            "Sid": f"ListInputs{index}" if index else "ListInputs",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"{s3}{bucket}",
            "Condition": {"StringLike": {"s3:prefix": sorted(prefixes)}},
        }
        for index, (bucket, prefixes) in enumerate(sorted(by_bucket.items()))
    ]
