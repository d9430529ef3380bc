"""The sagemaker target's request and policy on their own: CreateTrainingJob's parameters walked field by field
against botocore's service model (types, required members, enums, patterns, lengths and ranges), and the
execution role's statements read one by one. No AWS: these are the values the moto tests then send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.aws_shapes import check_params, operation_shape, shape_problems
from shipyard.pricing import prices, training_prices
from shipyard.train.options import TrainOptions
from shipyard.train.sagemaker_job import JobFacts, TrainNames, job_request, training_policy
from shipyard.training.contract import encode_hyperparameters
from shipyard.training.metrics import default_regex

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shipyard-train/digits@sha256:" + "ab" * 32
ROLE = "arn:aws:iam::123456789012:role/shipyard-train/shipyard-train-digits-1"


def check_request(request: dict[str, Any]) -> None:
    check_params("sagemaker", "CreateTrainingJob", request)


def source(tmp_path: Path) -> Path:
    (tmp_path / "digits").mkdir(exist_ok=True)
    (tmp_path / "digits" / "train.py").write_text("print('hi')\n")
    (tmp_path / "data").mkdir(exist_ok=True)
    return tmp_path / "digits"


def facts(options: TrainOptions, **changes: Any) -> JobFacts:
    values: dict[str, Any] = {
        "image": IMAGE,
        "role_arn": ROLE,
        "channels": {"train": "s3://sagemaker-us-east-1-123456789012/shipyard-train/digits/data/train/0123/"},
        "output_uri": "s3://sagemaker-us-east-1-123456789012/shipyard-train/digits/output/",
        "checkpoint_uri": None,
        "metric_definitions": {
            name: regex or default_regex(name) for name, regex in options.metric_definitions.items()
        },
        "hyperparameters": encode_hyperparameters(options.hyperparameters),
        "tags": {"shipyard:training-run": "digits-1", "shipyard:experiment": "digits"},
    }
    values.update(changes)
    return JobFacts(**values)


def test_on_demand_request_is_valid_and_says_what_was_asked(tmp_path: Path) -> None:
    options = TrainOptions.parse(
        source(tmp_path) / "train.py",
        data={"train": str(tmp_path / "data")},
        hp={"epochs": 10, "lr": 0.1, "deep": True, "kind": "rbf"},
        metrics=["accuracy", "loss=loss: ([0-9.]+)"],
        max_runtime="90m",
        env=["MODE=fast"],
        target="sagemaker",
        instance_type="ml.c5.xlarge",
        instance_count=2,
        volume_size_gb=50,
    )
    request = job_request(options, "digits-1", facts(options))
    check_request(request)
    assert request["TrainingJobName"] == "digits-1"
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE and algorithm["TrainingInputMode"] == "File"
    assert algorithm["MetricDefinitions"] == [
        {"Name": "accuracy", "Regex": r"\[metric\] accuracy=([-+0-9.eE]+|nan|inf)"},
        {"Name": "loss", "Regex": "loss: ([0-9.]+)"},
    ]
    # hyperparameters.json's strings: str as it is, the rest JSON.
    assert request["HyperParameters"] == {"epochs": "10", "lr": "0.1", "deep": "true", "kind": "rbf"}
    assert request["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://sagemaker-us-east-1-123456789012/shipyard-train/digits/data/train/0123/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
    ]
    assert request["ResourceConfig"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400}
    assert request["EnableManagedSpotTraining"] is False and "CheckpointConfig" not in request
    assert request["Environment"] == {"MODE": "fast"}
    assert {"Key": "shipyard:training-run", "Value": "digits-1"} in request["Tags"]


def test_spot_request_waits_at_least_the_runtime_and_checkpoints(tmp_path: Path) -> None:
    options = TrainOptions.parse(
        source(tmp_path) / "train.py", target="sagemaker", spot=True, max_runtime="1h", max_wait="2h"
    )
    checkpoints = "s3://sagemaker-us-east-1-123456789012/shipyard-train/digits/checkpoints/digits-1/"
    request = job_request(options, "digits-1", facts(options, checkpoint_uri=checkpoints))
    check_request(request)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"] == {"S3Uri": checkpoints, "LocalPath": "/opt/ml/checkpoints"}
    assert "MetricDefinitions" not in request["AlgorithmSpecification"]  # none asked: the key is left out
    # Spot without --max-wait: SageMaker still needs one, at least the run time.
    plain = TrainOptions.parse(source(tmp_path) / "train.py", target="sagemaker", spot=True, max_runtime="1h")
    no_data = job_request(plain, "digits-2", facts(plain, checkpoint_uri=checkpoints, channels={}))
    check_request(no_data)
    assert no_data["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    assert "InputDataConfig" not in no_data  # no channel: no empty list (the API's minimum is one)


def test_shape_checker_catches_what_the_service_would_refuse(tmp_path: Path) -> None:
    """The checker itself: a bad enum, a bad pattern and an out-of-range value are each reported."""
    options = TrainOptions.parse(source(tmp_path) / "train.py", target="sagemaker")
    request = job_request(options, "digits-1", facts(options))
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    request["TrainingJobName"] = "bad_name"
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 0
    problems = " ".join(shape_problems(operation_shape("sagemaker", "CreateTrainingJob"), request))
    assert "TrainingInputMode" in problems and "TrainingJobName" in problems and "MaxRuntimeInSeconds" in problems


def test_policy_reads_only_inputs_and_writes_only_output_and_checkpoints() -> None:
    policy = training_policy(
        partition="aws",
        region="us-east-1",
        account="123456789012",
        repository="shipyard-train/digits",
        inputs=["s3://datasets/digits/train/", "s3://bucket/shipyard-train/digits/data/validation/abcd/"],
        output_uri="s3://bucket/shipyard-train/digits/output/",
        checkpoint_uri="s3://bucket/shipyard-train/digits/checkpoints/digits-1/",
    )
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert by_sid["ReadInputs"]["Action"] == "s3:GetObject"
    assert by_sid["ReadInputs"]["Resource"] == [
        "arn:aws:s3:::bucket/shipyard-train/digits/data/validation/abcd/*",
        "arn:aws:s3:::datasets/digits/train/*",
    ]
    assert by_sid["WriteOutput"] == {
        "Sid": "WriteOutput",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::bucket/shipyard-train/digits/output/*",
    }
    assert by_sid["Checkpoints"]["Resource"] == "arn:aws:s3:::bucket/shipyard-train/digits/checkpoints/digits-1/*"
    puts = [s for s in policy["Statement"] if "s3:PutObject" in str(s["Action"])]
    assert {s["Sid"] for s in puts} == {"WriteOutput", "Checkpoints"}
    lists = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert {s["Resource"]: s["Condition"]["StringLike"]["s3:prefix"] for s in lists} == {
        "arn:aws:s3:::bucket": [
            "shipyard-train/digits/checkpoints/digits-1/*",
            "shipyard-train/digits/data/validation/abcd/*",
        ],
        "arn:aws:s3:::datasets": ["digits/train/*"],
    }
    assert by_sid["PullImage"]["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/shipyard-train/digits"
    assert by_sid["WriteLogs"]["Resource"][0] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs"
    )
    assert "logs:CreateLogGroup" in by_sid["WriteLogs"]["Action"]
    # Nothing is granted on every resource except the two actions that take none.
    assert {s["Sid"] for s in policy["Statement"] if s["Resource"] == "*"} == {"EcrLogin", "PutMetrics"}
    assert all("*" not in str(s["Action"]) for s in policy["Statement"])


@pytest.mark.parametrize(
    ("run", "experiment", "role", "repository"),
    [
        ("digits-1", "digits", "shipyard-train-digits-1", "shipyard-train/digits"),
        ("r" * 63, "My Experiment!", None, "shipyard-train/my-experiment"),
    ],
)
def test_names(run: str, experiment: str, role: str | None, repository: str) -> None:
    names = TrainNames(run, experiment)
    assert len(names.role) <= 64 and names.role.startswith("shipyard-train-")
    if role is not None:
        assert names.role == role
    assert names.repository == repository
    assert names.data_prefix("train", "f" * 64) == f"shipyard-train/{repository.split('/')[1]}/data/train/{'f' * 16}/"


def test_training_price_table_is_dated_sourced_and_prices_by_the_second() -> None:
    table = training_prices()
    assert table.as_of == "2024-06" and "Training" in table.source and table.region == "us-east-1"
    assert table.hourly("ml.m5.xlarge") == 0.23 and table.hourly("ml.t2.medium") is None  # not a training type
    assert table.for_seconds("ml.m5.xlarge", 1800, count=2) == pytest.approx(0.23)
    assert table.for_seconds("ml.unknown", 60) is None
    assert table.serverless_per_gb_second == 0.0 and prices().serverless_per_gb_second > 0
