"""EventBridge Scheduler: the one-time schedule that deletes a deployment's endpoint at its TTL (`--ttl`)."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["SchedulerGateway"]


class SchedulerGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("scheduler")
