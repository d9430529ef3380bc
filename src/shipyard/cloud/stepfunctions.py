"""Step Functions: the one-step state machine that deletes an idle deployment's endpoint."""

from __future__ import annotations

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
