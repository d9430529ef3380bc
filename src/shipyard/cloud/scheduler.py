"""EventBridge Scheduler: the one-time schedule that deletes a deployment's endpoint at its TTL (`--ttl`)."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["SchedulerGateway", "one_time_at"]

_ONE_TIME = re.compile(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)")


def one_time_at(expression: str) -> str | None:
    """The ``YYYY-MM-DDTHH:MM:SS`` of a one-time schedule's ``at(...)`` expression (what :meth:`SchedulerGateway.put`
    writes), or None for any other expression."""
    found = _ONE_TIME.fullmatch(expression)
    return found.group(1) if found else None


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

    def put(
        self,
        name: str,
        *,
        at: str,
        target: dict[str, Any],
        description: str,
        after_completion: str = "NONE",
        group: str = "default",
    ) -> str:
        """Create the one-time schedule ``at(at)`` (``YYYY-MM-DDTHH:MM:SS`` in UTC), or update it when it exists
        (UpdateSchedule replaces every field: a TTL moved by an update); its ARN. ``target``: Scheduler's Target
        (Arn, RoleArn, Input, RetryPolicy). Schedules take no tags (CreateSchedule has no Tags parameter)."""
        request: dict[str, Any] = {
            "Name": name,
            "GroupName": group,
            "ScheduleExpression": f"at({at})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            "State": "ENABLED",
            "ActionAfterCompletion": after_completion,
            "Description": description,
        }
        with aws_call(f"put the schedule {name}", self.aws.region):
            try:
                answer = self.client.create_schedule(**request)
            except ClientError as exc:
                if error_code(exc) != "ConflictException":
                    raise
                answer = self.client.update_schedule(**request)
        return str(answer["ScheduleArn"])

    def delete(self, name: str, *, group: str = "default") -> bool:
        """Delete the schedule; ``False`` when it was already gone (fired with ActionAfterCompletion DELETE, or
        deleted by hand)."""
        with aws_call(f"delete the schedule {name}", self.aws.region):
            try:
                self.client.delete_schedule(Name=name, GroupName=group)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True
