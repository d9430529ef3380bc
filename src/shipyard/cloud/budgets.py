"""AWS Budgets: Shipyard's cost budget with actual and forecast alerts (`shipyard budget`)."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["BudgetsGateway"]


class BudgetsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("budgets")
