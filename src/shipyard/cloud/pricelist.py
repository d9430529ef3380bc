"""The AWS Price List API (GetProducts): the current on-demand prices of a region's SageMaker instances."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["PriceListGateway"]


class PriceListGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("pricing")
