"""SageMaker training jobs: create, describe, stop, and their CloudWatch logs read as they grow.

A training job writes its container's output to the log group ``/aws/sagemaker/TrainingJobs``, one stream per
host (``JOBNAME/algo-1-1700000000``, ``JOBNAME/algo-2-…``); :class:`JobLogs` finds the streams as they appear
and reads each from where it left off (GetLogEvents' ``nextForwardToken``), so every line is read once.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.logs import LogEvent, LogsGateway
from shipyard.cloud.sagemaker import describe_or_none, is_missing
from shipyard.cloud.session import Aws

__all__ = ["TRAINING_LOG_GROUP", "JobLogs", "TrainingGateway"]

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class TrainingGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sagemaker")

    def create(self, request: dict[str, Any]) -> str:
        """CreateTrainingJob with ``request`` (its parameters, as the API names them); the job's ARN."""
        name = request.get("TrainingJobName", "")
        with aws_call(f"create the training job {name}", self.aws.region):
            return str(self.client.create_training_job(**request)["TrainingJobArn"])

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeTrainingJob (None when there is no such job)."""
        answer = describe_or_none(
            f"training job {name}", self.aws.region, lambda: self.client.describe_training_job(TrainingJobName=name)
        )
        if answer is not None:
            answer.pop("ResponseMetadata", None)
        return answer

    def stop(self, name: str) -> bool:
        """StopTrainingJob; False when the job had already ended (SageMaker refuses to stop it)."""
        with aws_call(f"stop the training job {name}", self.aws.region):
            try:
                self.client.stop_training_job(TrainingJobName=name)
            except ClientError as exc:
                if error_code(exc) == "ValidationException" and not is_missing(exc):
                    return False  # "The training job ... is not in progress"
                raise
        return True


class JobLogs:
    """The log lines of one training job, read incrementally: each :meth:`read` returns what is new."""

    def __init__(self, logs: LogsGateway, job: str, group: str = TRAINING_LOG_GROUP) -> None:
        self.logs = logs
        self.job = job
        self.group = group
        self._tokens: dict[str, str | None] = {}

    @property
    def streams(self) -> list[str]:
        return sorted(self._tokens)

    def read(self) -> list[LogEvent]:
        """The events written since the last call, in time order across the job's streams (hosts)."""
        for stream in self.logs.streams(self.group, f"{self.job}/"):
            self._tokens.setdefault(stream, None)
        found: list[LogEvent] = []
        for stream, token in list(self._tokens.items()):
            events, self._tokens[stream] = self.logs.stream_events(self.group, stream, token=token)
            found.extend(events)
        found.sort(key=lambda event: event.timestamp_ms)
        return found
