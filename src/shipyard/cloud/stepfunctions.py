"""Step Functions: the one-step state machine that deletes an idle deployment's endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["StepFunctionsGateway"]


class StepFunctionsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("stepfunctions")

    def describe(self, arn: str) -> dict[str, Any] | None:
        """DescribeStateMachine's answer (its ``definition``, ``roleArn``, ``type``), or None when it is gone."""
        with aws_call(f"read the state machine {arn}", self.aws.region):
            try:
                answer: dict[str, Any] = self.client.describe_state_machine(stateMachineArn=arn)
            except ClientError as exc:
                if error_code(exc) in {"StateMachineDoesNotExist", "ResourceNotFound"}:
                    return None
                raise
        answer.pop("ResponseMetadata", None)
        return answer

    def put(
        self,
        name: str,
        *,
        definition: dict[str, Any],
        role_arn: str,
        arn: str,
        tags: Sequence[dict[str, str]] = (),
        role_wait_s: float = 60.0,
    ) -> str:
        """Create the STANDARD state machine ``name`` (``arn``: the ARN it will have), or update its definition and
        role when it exists; its ARN. ``tags`` in Step Functions' shape (lower-case ``key``/``value``). A role
        Step Functions cannot assume yet (just made) is retried for up to ``role_wait_s``."""
        document = json.dumps(definition)
        deadline = time.monotonic() + role_wait_s
        delay = 2.0
        with aws_call(f"put the state machine {name}", self.aws.region):
            while True:
                try:
                    return self._create_or_update(name, document, role_arn, arn, tags)
                except ClientError as exc:
                    # Step Functions checks that it can assume the role: a role made seconds ago may not be
                    # visible to it yet (IAM is eventually consistent)
                    if "assume" not in str(exc).lower() or time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)

    def _create_or_update(
        self, name: str, document: str, role_arn: str, arn: str, tags: Sequence[dict[str, str]]
    ) -> str:
        try:
            answer = self.client.create_state_machine(
                name=name, definition=document, roleArn=role_arn, type="STANDARD", tags=list(tags)
            )
        except ClientError as exc:
            if error_code(exc) != "StateMachineAlreadyExists":
                raise
            self.client.update_state_machine(stateMachineArn=arn, definition=document, roleArn=role_arn)
            return arn
        return str(answer["stateMachineArn"])

    def last_execution(self, arn: str) -> dict[str, Any] | None:
        """The newest execution of the state machine (ListExecutions: its ``status``, ``startDate``, ``stopDate``,
        ``name``; a SUCCEEDED one with its ``output``, parsed), or None when it never ran (or is gone)."""
        with aws_call(f"list the executions of the state machine {arn}", self.aws.region):
            try:
                answer = self.client.list_executions(stateMachineArn=arn, maxResults=1)
            except ClientError as exc:
                if error_code(exc) in {"StateMachineDoesNotExist", "ResourceNotFound"}:
                    return None
                raise
        executions: list[dict[str, Any]] = answer.get("executions") or []
        if not executions:
            return None
        last = dict(executions[0])
        if last.get("status") == "SUCCEEDED":  # its output tells which way it ended
            with aws_call(f"describe the execution {last.get('name')}", self.aws.region):
                described = self.client.describe_execution(executionArn=last["executionArn"])
            try:
                last["output"] = json.loads(str(described.get("output") or "null"))
            except json.JSONDecodeError:
                last["output"] = None
        return last

    def delete(self, arn: str) -> bool:
        """Delete the state machine; ``False`` when it was already gone (DeleteStateMachine does not fail for a
        missing one, so its existence is checked first)."""
        if self.describe(arn) is None:
            return False
        with aws_call(f"delete the state machine {arn}", self.aws.region):
            self.client.delete_state_machine(stateMachineArn=arn)
        return True
