"""The Resource Groups Tagging API: everything carrying Shipyard's tags (`status --all`)."""

from __future__ import annotations

from shipyard.cloud.errors import aws_call
from shipyard.cloud.session import TAG_KEY, Aws

__all__ = ["TaggingGateway"]


class TaggingGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("resourcegroupstaggingapi")

    def tagged(self, key: str = TAG_KEY) -> dict[str, dict[str, str]]:
        """ARN → tags of every resource in the region carrying the tag ``key`` (any value): GetResources with
        ``TagFilters=[{"Key": key}]``, every page. Resources of services the Tagging API does not cover, and
        those whose tags it has not indexed yet, are missing: callers look by name too."""
        found: dict[str, dict[str, str]] = {}
        with aws_call(f"list the resources tagged {key}", self.aws.region):
            for page in self.client.get_paginator("get_resources").paginate(TagFilters=[{"Key": key}]):
                for item in page.get("ResourceTagMappingList", []):
                    found[str(item["ResourceARN"])] = {str(t["Key"]): str(t["Value"]) for t in item.get("Tags", [])}
        return found
