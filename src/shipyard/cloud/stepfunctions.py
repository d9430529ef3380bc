"""Step Functions: the one-step state machine that deletes an idle deployment's endpoint."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["StepFunctionsGateway"]


class StepFunctionsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("stepfunctions")
