"""EventBridge: the rule that hands an idle deployment's alarm (`--idle-action delete`) to its state machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws
from shipyard.errors import CloudError

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

    def put_rule(
        self, name: str, *, pattern: dict[str, Any], description: str, tags: Sequence[dict[str, str]] = ()
    ) -> str:
        """Create or replace the rule (PutRule replaces one of the same name) on the default bus; its ARN."""
        with aws_call(f"put the EventBridge rule {name}", self.aws.region):
            answer = self.client.put_rule(
                Name=name,
                EventPattern=json.dumps(pattern),
                State="ENABLED",
                Description=description,
                Tags=list(tags),
            )
        return str(answer["RuleArn"])

    def put_target(self, rule: str, *, target_id: str, arn: str, role_arn: str) -> None:
        """Point ``rule`` at ``arn`` (a state machine: EventBridge starts an execution with the event as its input),
        with the role EventBridge calls it with (PutTargets; a failed entry is an error)."""
        with aws_call(f"put the target of the EventBridge rule {rule}", self.aws.region):
            answer = self.client.put_targets(Rule=rule, Targets=[{"Id": target_id, "Arn": arn, "RoleArn": role_arn}])
        failed = answer.get("FailedEntries") or []
        if failed:
            raise CloudError(
                f"cannot put the target of the EventBridge rule {rule}: {failed[0].get('ErrorCode')}: "
                f"{failed[0].get('ErrorMessage')}"
            )

    def delete_rule(self, name: str) -> bool:
        """Remove the rule's targets, then the rule (DeleteRule refuses a rule with targets); ``False`` when it
        was already gone."""
        if self.describe_rule(name) is None:
            return False
        ids = [str(t["Id"]) for t in self.targets(name)]
        with aws_call(f"delete the EventBridge rule {name}", self.aws.region):
            if ids:
                self.client.remove_targets(Rule=name, Ids=ids)
            try:
                self.client.delete_rule(Name=name)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True
