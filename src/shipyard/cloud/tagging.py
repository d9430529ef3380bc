"""The Resource Groups Tagging API: everything carrying Shipyard's tags (`status --all`)."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["TaggingGateway"]


class TaggingGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("resourcegroupstaggingapi")
