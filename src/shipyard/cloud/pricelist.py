"""The AWS Price List API (GetProducts): the current on-demand prices of a region's SageMaker instances.

The Price List Query API has endpoints in three regions only (``us-east-1``, ``eu-central-1``,
``ap-south-1``: botocore's endpoint data lists no other), and each of them answers for every region, so the
gateway calls the nearest of them whatever the deployment's region, and names the deployment's region in the
``regionCode`` filter. Real-time inference hosting is the product family ``ML Instance`` whose ``component``
is ``Hosting``; its usage type reads ``USE1-Host:ml.m5.large`` (the region's prefix, ``Host:``, the instance
type) and its on-demand term has one price dimension per hour (``Hrs``) in USD. Products of the same component
with another usage type (asynchronous inference, a savings-plan rate) are left out by that usage type.
"""

from __future__ import annotations

from typing import Any

import orjson

from shipyard.cloud.errors import aws_call
from shipyard.cloud.session import Aws

__all__ = ["PRICE_LIST_REGIONS", "PriceListGateway", "hosting_price", "price_list_region"]

PRICE_LIST_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
"""Where the Price List Query API has an endpoint (api.pricing.REGION.amazonaws.com)."""

SERVICE_CODE = "AmazonSageMaker"


def price_list_region(region: str) -> str:
    """The Price List endpoint to ask about ``region``: Europe, the Middle East and Africa from Frankfurt,
    Asia-Pacific from Mumbai, the rest from N. Virginia (any of them answers for every region)."""
    if region.startswith(("eu-", "me-", "il-", "af-")):
        return "eu-central-1"
    if region.startswith("ap-"):
        return "ap-south-1"
    return "us-east-1"


def hosting_price(document: str | bytes | dict[str, Any]) -> tuple[str, float] | None:
    """``(instance type, USD per hour)`` of one GetProducts ``PriceList`` entry (a JSON string), or None
    when it is not an on-demand real-time hosting instance priced per hour in USD."""
    product: dict[str, Any] = orjson.loads(document) if isinstance(document, str | bytes) else document
    attributes = product.get("product", {}).get("attributes", {})
    instance = str(attributes.get("instanceName") or "")
    usage = str(attributes.get("usagetype") or "")
    if not instance.startswith("ml.") or not usage.endswith(f"Host:{instance}"):
        return None
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if str(dimension.get("unit", "")).lower() in {"hrs", "hours"} and usd is not None and float(usd) > 0:
                return instance, float(usd)
    return None


class PriceListGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.endpoint_region = price_list_region(aws.region)
        self.client = aws.client("pricing", region=self.endpoint_region)

    def hosting_prices(self, region: str | None = None) -> dict[str, float]:
        """Instance type → USD per hour of SageMaker real-time hosting in ``region`` (default: the session's),
        every page of GetProducts (ServiceCode AmazonSageMaker, TERM_MATCH regionCode and component Hosting)."""
        region = region or self.aws.region
        filters = [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"},
        ]
        found: dict[str, float] = {}
        with aws_call(f"read SageMaker's hosting prices in {region} (Price List API)", self.endpoint_region):
            pages = self.client.get_paginator("get_products").paginate(
                ServiceCode=SERVICE_CODE, Filters=filters, FormatVersion="aws_v1"
            )
            for page in pages:
                for document in page.get("PriceList", []):
                    price = hosting_price(document)
                    if price is not None:
                        found[price[0]] = price[1]
        return found
