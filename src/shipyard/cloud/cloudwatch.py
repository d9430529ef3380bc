"""CloudWatch: a deployment's alarms and dashboard, and the figures of its recent traffic (GetMetricData)."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["CloudWatchGateway"]


class CloudWatchGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("cloudwatch")
