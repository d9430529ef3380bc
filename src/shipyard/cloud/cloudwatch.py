"""CloudWatch: a deployment's alarms and dashboard, and the figures of its recent traffic (GetMetricData)."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.cloud.errors import aws_call
from shipyard.cloud.session import Aws

__all__ = ["Alarm", "CloudWatchGateway"]


@dataclass(frozen=True)
class Alarm:
    """One metric alarm as DescribeAlarms shows it: ``state`` is OK, ALARM or INSUFFICIENT_DATA."""

    name: str
    state: str
    reason: str
    metric: str


class CloudWatchGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("cloudwatch")

    def describe_alarms(self, names: list[str]) -> list[Alarm]:
        """The metric alarms named (those that exist), in the order asked; DescribeAlarms takes 100 names a call."""
        found: dict[str, Alarm] = {}
        with aws_call("read the state of the alarms", self.aws.region):
            for start in range(0, len(names), 100):
                answer = self.client.describe_alarms(AlarmNames=names[start : start + 100], AlarmTypes=["MetricAlarm"])
                for item in answer.get("MetricAlarms", []):
                    found[item["AlarmName"]] = Alarm(
                        name=item["AlarmName"],
                        state=item.get("StateValue", ""),
                        reason=item.get("StateReason", ""),
                        metric=item.get("MetricName", ""),
                    )
        return [found[n] for n in names if n in found]
