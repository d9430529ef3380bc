"""EventBridge Scheduler: the one-time schedule that deletes a deployment's endpoint at its TTL (`--ttl`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["SchedulerGateway"]


class SchedulerGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("scheduler")

    def get(self, name: str, *, group: str = "default") -> dict[str, Any] | None:
        """GetSchedule's answer for the schedule ``name`` (its ``Target``, ``ScheduleExpression``, ...), or None."""
        with aws_call(f"read the schedule {name}", self.aws.region):
            try:
                answer: dict[str, Any] = self.client.get_schedule(Name=name, GroupName=group)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise
        answer.pop("ResponseMetadata", None)
        return answer
