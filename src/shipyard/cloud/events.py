"""EventBridge: the rule that hands an idle deployment's alarm (`--idle ... --idle-action delete`) to its state machine."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["EventsGateway"]


class EventsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("events")
