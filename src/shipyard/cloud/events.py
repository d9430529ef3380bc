"""EventBridge: the rule that hands an idle deployment's alarm (`--idle-action delete`) to its state machine."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["EventsGateway"]


class EventsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("events")

    def describe_rule(self, name: str) -> dict[str, Any] | None:
        """DescribeRule's answer for the rule ``name`` (its ``EventPattern``, ``State``, ``Arn``), or None."""
        with aws_call(f"read the EventBridge rule {name}", self.aws.region):
            try:
                answer: dict[str, Any] = self.client.describe_rule(Name=name)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise
        answer.pop("ResponseMetadata", None)
        return answer

    def targets(self, rule: str) -> list[dict[str, Any]]:
        """The targets of ``rule`` (ListTargetsByRule, every page)."""
        with aws_call(f"list the targets of the EventBridge rule {rule}", self.aws.region):
            found: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                page = self.client.list_targets_by_rule(Rule=rule, **({"NextToken": token} if token else {}))
                found.extend(page.get("Targets", []))
                token = page.get("NextToken")
                if not token:
                    return found
