"""SNS: the topic a deployment's alarms notify (`--notify EMAIL|SNS_ARN`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["SnsGateway"]

_MISSING = {"NotFound", "NotFoundException"}


class SnsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sns")

    def create_topic(self, name: str, *, tags: Sequence[dict[str, str]] = ()) -> str:
        """The topic's ARN (CreateTopic returns the existing one for a name already taken)."""
        with aws_call(f"create the SNS topic {name}", self.aws.region):
            return str(self.client.create_topic(Name=name, Tags=list(tags))["TopicArn"])

    def subscribe_email(self, topic_arn: str, email: str) -> str:
        """Subscribe ``email`` (AWS mails a confirmation link; nothing arrives before it is followed); the
        subscription's ARN, or ``pending confirmation``."""
        with aws_call(f"subscribe {email} to {topic_arn}", self.aws.region):
            answer = self.client.subscribe(
                TopicArn=topic_arn, Protocol="email", Endpoint=email, ReturnSubscriptionArn=True
            )
        return str(answer.get("SubscriptionArn", "pending confirmation"))

    def find_topic(self, name: str) -> str | None:
        """The ARN of this account's topic named ``name`` in the region, or None (ListTopics, every page)."""
        with aws_call("list the SNS topics", self.aws.region):
            for page in self.client.get_paginator("list_topics").paginate():
                for topic in page.get("Topics", []):
                    if str(topic["TopicArn"]).rsplit(":", 1)[-1] == name:
                        return str(topic["TopicArn"])
        return None

    def exists(self, topic_arn: str) -> bool:
        with aws_call(f"find the SNS topic {topic_arn}", self.aws.region):
            try:
                self.client.get_topic_attributes(TopicArn=topic_arn)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return False
                raise
        return True

    def subscriptions(self, topic_arn: str) -> list[dict[str, Any]]:
        """The topic's subscriptions (Protocol, Endpoint, SubscriptionArn: ``PendingConfirmation`` until the
        mail's link is followed), every page."""
        found: list[dict[str, Any]] = []
        with aws_call(f"list the subscriptions of {topic_arn}", self.aws.region):
            for page in self.client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
                found.extend(page.get("Subscriptions", []))
        return found

    def untag(self, arn: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {arn}", self.aws.region):
            self.client.untag_resource(ResourceArn=arn, TagKeys=keys)

    def delete_topic(self, topic_arn: str) -> bool:
        """Delete the topic (its subscriptions go with it); ``False`` when it was already gone (DeleteTopic
        does not fail for a missing topic, so its existence is checked first)."""
        if not self.exists(topic_arn):
            return False
        with aws_call(f"delete the SNS topic {topic_arn}", self.aws.region):
            self.client.delete_topic(TopicArn=topic_arn)
        return True
