"""AWS Budgets: Shipyard's cost budget with actual and forecast alerts (`shipyard budget`).

Budgets is a global service: botocore sends every call to ``budgets.amazonaws.com`` (us-east-1) whatever the
session's region, and a budget covers the whole account's costs (every region) unless filtered. Shipyard's
budget is filtered to the cost of resources carrying the tag ``shipyard:deployment`` with any value:

* the ``CostFilters`` map (``{"TagKeyValue": ["user:shipyard:deployment$digits", ...]}``) names each value
  one by one (``user:KEY$`` alone selects the costs *without* the tag), so it cannot say "any value" and would
  miss every deployment made after the budget;
* the newer ``FilterExpression`` can: ``{"Not": {"Tags": {"Key": "shipyard:deployment", "MatchOptions":
  ["ABSENT"]}}}`` (costs whose tag is not absent), with ``Metrics: ["UnblendedCost"]`` (the two cannot be
  combined with ``CostFilters``). That is the one used.

A tag filters costs only once it is activated as a *cost allocation tag* in Billing (Billing console → Cost
allocation tags, or Cost Explorer's UpdateCostAllocationTagsStatus), and only for costs incurred after that;
:meth:`BudgetsGateway.tag_activation` asks Cost Explorer (ListCostAllocationTags) whether it is.

Alerts are ``NotificationsWithSubscribers`` of CreateBudget: actual spend above 80 % and 100 % of the limit and
forecast spend above 100 %, each mailed to the ``EMAIL`` subscribers (Budgets needs at least one subscriber per
notification, so a budget without ``--notify`` has no alerts, only its figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import TAG_KEY, Aws

__all__ = ["ALERTS", "TIME_UNITS", "BudgetsGateway", "tag_filter"]

TIME_UNITS = {"month": "MONTHLY", "quarter": "QUARTERLY", "year": "ANNUALLY"}
"""The period a user names → Budgets' TimeUnit."""

ALERTS: tuple[tuple[str, float], ...] = (("ACTUAL", 80.0), ("ACTUAL", 100.0), ("FORECASTED", 100.0))
"""(NotificationType, percent of the limit) of each alert, GREATER_THAN."""


def tag_filter(key: str = TAG_KEY) -> dict[str, Any]:
    """The FilterExpression selecting the costs of resources carrying ``key`` with any value."""
    return {"Not": {"Tags": {"Key": key, "MatchOptions": ["ABSENT"]}}}


def _notification(kind: str, percent: float) -> dict[str, Any]:
    return {
        "NotificationType": kind,
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": percent,
        "ThresholdType": "PERCENTAGE",
    }


class BudgetsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("budgets")  # global: budgets.amazonaws.com whatever the region

    def create(
        self,
        name: str,
        *,
        amount_usd: float,
        time_unit: str,
        tag_key: str = TAG_KEY,
        emails: Sequence[str] = (),
    ) -> None:
        """CreateBudget: a COST budget of ``amount_usd`` per ``time_unit`` over the costs tagged ``tag_key``,
        with the :data:`ALERTS` mailed to ``emails`` (none without them)."""
        budget = {
            "BudgetName": name,
            "BudgetType": "COST",
            "BudgetLimit": {"Amount": f"{amount_usd:.2f}", "Unit": "USD"},
            "TimeUnit": time_unit,
            "FilterExpression": tag_filter(tag_key),
            "Metrics": ["UnblendedCost"],
        }
        subscribers = [{"SubscriptionType": "EMAIL", "Address": email} for email in emails]
        notifications = [
            {"Notification": _notification(kind, percent), "Subscribers": subscribers}
            for kind, percent in (ALERTS if subscribers else ())
        ]
        with aws_call(f"create the budget {name}", self.aws.region):
            self.client.create_budget(
                AccountId=self.aws.account, Budget=budget, NotificationsWithSubscribers=notifications
            )

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeBudget (with its filter expression), or None when there is no budget of that name."""
        with aws_call(f"read the budget {name}", self.aws.region):
            try:
                answer = self.client.describe_budget(
                    AccountId=self.aws.account, BudgetName=name, ShowFilterExpression=True
                )
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    return None
                raise
        return dict(answer["Budget"])

    def notifications(self, name: str) -> list[dict[str, Any]]:
        """DescribeNotificationsForBudget, every page."""
        found: list[dict[str, Any]] = []
        with aws_call(f"read the alerts of the budget {name}", self.aws.region):
            token: str | None = None
            while True:
                extra = {"NextToken": token} if token else {}
                page = self.client.describe_notifications_for_budget(
                    AccountId=self.aws.account, BudgetName=name, **extra
                )
                found.extend(page.get("Notifications", []))
                token = page.get("NextToken")
                if not token:
                    return found

    def subscribers(self, name: str, notification: dict[str, Any]) -> list[dict[str, str]]:
        """DescribeSubscribersForNotification: who ``notification`` of the budget ``name`` goes to."""
        with aws_call(f"read the subscribers of an alert of the budget {name}", self.aws.region):
            answer = self.client.describe_subscribers_for_notification(
                AccountId=self.aws.account, BudgetName=name, Notification=notification
            )
        return [dict(s) for s in answer.get("Subscribers", [])]

    def delete(self, name: str) -> bool:
        """DeleteBudget (its notifications and subscribers go with it); ``False`` when it was already gone."""
        with aws_call(f"delete the budget {name}", self.aws.region):
            try:
                self.client.delete_budget(AccountId=self.aws.account, BudgetName=name)
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    return False
                raise
        return True

    def tag_activation(self, key: str = TAG_KEY) -> str | None:
        """Whether ``key`` is a cost allocation tag: ``Active`` or ``Inactive`` (Cost Explorer's
        ListCostAllocationTags), None when Billing has not seen the tag yet (it lists a key once a resource
        carrying it has been billed, up to 24 hours later)."""
        with aws_call(f"check the cost allocation tag {key} (Cost Explorer)", self.aws.region):
            answer = self.aws.client("ce", region="us-east-1").list_cost_allocation_tags(TagKeys=[key])
        for tag in answer.get("CostAllocationTags", []):
            if tag.get("TagKey") == key:
                return str(tag.get("Status"))
        return None
