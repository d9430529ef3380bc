"""SNS: the topic a deployment's alarms notify (`--notify EMAIL|SNS_ARN`)."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["SnsGateway"]


class SnsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sns")
