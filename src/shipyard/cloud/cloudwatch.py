"""CloudWatch: a deployment's alarms and dashboard, and the figures of its recent traffic (GetMetricData)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["Alarm", "AlarmSpec", "CloudWatchGateway", "MetricQuery"]

_DESCRIBE_BATCH = 100  # DescribeAlarms takes up to 100 names


@dataclass(frozen=True)
class Alarm:
    """One alarm as DescribeAlarms answers it; ``metric`` is its MetricName (a metric-math alarm: its label)."""

    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    metric: str
    threshold: float | None = None
    period_s: int | None = None
    evaluation_periods: int | None = None
    actions: tuple[str, ...] = ()  # AlarmActions


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm to put: a plain metric (``statistic`` Sum/Average/Maximum, or ``pNN``: an ExtendedStatistic),
    or, with ``expression``, metric math over ``inputs`` (id → MetricName, each the ``Sum`` of one period, in
    the same namespace and dimensions)."""

    name: str
    metric: str
    namespace: str
    dimensions: Mapping[str, str]
    threshold: float
    evaluation_periods: int
    datapoints: int
    period_s: int = 60
    statistic: str = "Average"
    comparison: str = "GreaterThanThreshold"
    description: str = ""
    unit: str | None = None
    expression: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    # notBreaching: no traffic is not an alarm; the idle alarm (deploy/sagemaker/guards.py) takes ``breaching``:
    # an endpoint nobody calls publishes no Invocations at all
    missing_data: str = "notBreaching"

    @property
    def metric_count(self) -> int:
        """The metrics CloudWatch bills this alarm for (metric math: each input)."""
        return len(self.inputs) if self.expression else 1

    def request(self) -> dict[str, Any]:
        """PutMetricAlarm's parameters for this alarm (without its actions and tags)."""
        request: dict[str, Any] = {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Threshold": float(self.threshold),
            "ComparisonOperator": self.comparison,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints,
            "TreatMissingData": self.missing_data,
        }
        if self.expression:
            request["Metrics"] = [
                {"Id": "rate", "Expression": self.expression, "Label": self.metric, "ReturnData": True},
                *(
                    {"Id": ident, "MetricStat": self._stat(name, "Sum"), "ReturnData": False}
                    for ident, name in self.inputs.items()
                ),
            ]
            return request
        request.update(
            Namespace=self.namespace,
            MetricName=self.metric,
            Dimensions=_dimensions(self.dimensions),
            Period=self.period_s,
        )
        request["ExtendedStatistic" if self.statistic.startswith("p") else "Statistic"] = self.statistic
        if self.unit:
            request["Unit"] = self.unit
        return request

    def _stat(self, metric: str, stat: str) -> dict[str, Any]:
        return {
            "Metric": {"Namespace": self.namespace, "MetricName": metric, "Dimensions": _dimensions(self.dimensions)},
            "Period": self.period_s,
            "Stat": stat,
        }


@dataclass(frozen=True)
class MetricQuery:
    """One GetMetricData query: ``stat`` (Sum, Average, p99, ...) of a metric over periods of ``period_s``."""

    id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    stat: str
    period_s: int = 3600

    def request(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": _dimensions(self.dimensions),
                },
                "Period": self.period_s,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def _dimensions(dimensions: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": key, "Value": value} for key, value in dimensions.items()]


class CloudWatchGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("cloudwatch")

    # -- alarms -------------------------------------------------------------------------------------------
    def put_metric_alarm(
        self,
        spec: AlarmSpec,
        *,
        actions: Sequence[str] = (),
        tags: Sequence[dict[str, str]] = (),
        ok_actions: Sequence[str] | None = None,
    ) -> None:
        """Create or replace the alarm (PutMetricAlarm replaces one of the same name); ``actions``: the SNS
        topics told when it goes to ALARM and back to OK (``ok_actions``: others for OK)."""
        request = spec.request()
        oks = list(actions if ok_actions is None else ok_actions)
        request.update(AlarmActions=list(actions), OKActions=oks, ActionsEnabled=True)
        if tags:
            request["Tags"] = list(tags)
        with aws_call(f"put the alarm {spec.name}", self.aws.region):
            self.client.put_metric_alarm(**request)

    def describe_alarms(self, names: Sequence[str]) -> list[Alarm]:
        """The alarms of these names that exist (in the order CloudWatch answers)."""
        found: list[Alarm] = []
        names = list(names)
        for start in range(0, len(names), _DESCRIBE_BATCH):
            batch = names[start : start + _DESCRIBE_BATCH]
            with aws_call("describe the alarms", self.aws.region):
                pages = self.client.get_paginator("describe_alarms").paginate(
                    AlarmNames=batch, AlarmTypes=["MetricAlarm"]
                )
                for page in pages:
                    found.extend(_alarm(item) for item in page.get("MetricAlarms", []))
        return found

    def alarm_items(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """DescribeAlarms' full items (MetricAlarms) for these names: what an export writes back."""
        found: list[dict[str, Any]] = []
        names = list(names)
        for start in range(0, len(names), _DESCRIBE_BATCH):
            with aws_call("describe the alarms", self.aws.region):
                answer = self.client.describe_alarms(AlarmNames=names[start : start + _DESCRIBE_BATCH])
            found.extend(dict(item) for item in answer.get("MetricAlarms", []))
        return found

    def untag(self, arn: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {arn}", self.aws.region):
            self.client.untag_resource(ResourceARN=arn, TagKeys=keys)

    def went_to_alarm(self, names: Sequence[str], since: datetime) -> Alarm | None:
        """The first of ``names`` whose history shows a change to ALARM after ``since`` (DescribeAlarmHistory,
        StateUpdate items): the alarm that fired even when it is back to OK now. None when none did."""
        fired: list[tuple[datetime, Alarm]] = []
        for name in names:
            with aws_call(f"read the history of the alarm {name}", self.aws.region):
                pages = self.client.get_paginator("describe_alarm_history").paginate(
                    AlarmName=name, HistoryItemType="StateUpdate", StartDate=since, ScanBy="TimestampAscending"
                )
                for page in pages:
                    for item in page.get("AlarmHistoryItems", []):
                        change = _state_change(item)
                        if change is not None and change[0] == "ALARM":
                            fired.append((item["Timestamp"], Alarm(name, "ALARM", change[1], "")))
                            break
        return min(fired, key=lambda pair: pair[0])[1] if fired else None

    def set_state(self, name: str, state: str, reason: str) -> None:
        """SetAlarmState: the alarm goes to ``state`` until its next evaluation (which may change it back, and then
        EventBridge sees a state change)."""
        with aws_call(f"set the state of the alarm {name}", self.aws.region):
            self.client.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)

    def delete_alarm(self, name: str) -> bool:
        """Delete the alarm; ``False`` when it was already gone (DeleteAlarms does not fail for a missing name,
        so its existence is checked first)."""
        if not self.describe_alarms([name]):
            return False
        with aws_call(f"delete the alarm {name}", self.aws.region):
            self.client.delete_alarms(AlarmNames=[name])
        return True

    # -- dashboards -----------------------------------------------------------------------------------------
    def put_dashboard(self, name: str, body: str) -> list[str]:
        """Create or replace the dashboard; CloudWatch's validation messages (it accepted the body with them)."""
        with aws_call(f"put the dashboard {name}", self.aws.region):
            answer = self.client.put_dashboard(DashboardName=name, DashboardBody=body)
        return [str(item.get("Message")) for item in answer.get("DashboardValidationMessages") or []]

    def get_dashboard(self, name: str) -> str | None:
        with aws_call(f"read the dashboard {name}", self.aws.region):
            try:
                return str(self.client.get_dashboard(DashboardName=name)["DashboardBody"])
            except ClientError as exc:
                if error_code(exc) in {"ResourceNotFound", "ResourceNotFoundException"}:
                    return None
                raise

    def delete_dashboard(self, name: str) -> bool:
        """``False`` when it was already gone."""
        with aws_call(f"delete the dashboard {name}", self.aws.region):
            try:
                self.client.delete_dashboards(DashboardNames=[name])
            except ClientError as exc:
                if error_code(exc) in {"ResourceNotFound", "ResourceNotFoundException"}:
                    return False
                raise
        return True

    # -- figures --------------------------------------------------------------------------------------------
    def metric_data(self, queries: Sequence[MetricQuery], start: datetime, end: datetime) -> dict[str, list[float]]:
        """GetMetricData over ``start``–``end``: each query's values (newest first, as CloudWatch answers),
        every page read."""
        values: dict[str, list[float]] = {query.id: [] for query in queries}
        if not queries:
            return values
        with aws_call("read the metrics (GetMetricData)", self.aws.region):
            pages = self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=[query.request() for query in queries], StartTime=start, EndTime=end
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    values.setdefault(str(result["Id"]), []).extend(float(v) for v in result.get("Values", []))
        return values


def _state_change(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(new state, its reason) of one StateUpdate history item (its HistoryData is a JSON document)."""
    try:
        data = json.loads(str(item.get("HistoryData") or "{}"))
    except json.JSONDecodeError:
        return None
    new = data.get("newState") or {}
    return (str(new.get("stateValue", "")), str(new.get("stateReason", ""))) if new else None


def _alarm(item: Mapping[str, Any]) -> Alarm:
    metric = item.get("MetricName")
    if not metric:
        returned = [m for m in item.get("Metrics", []) if m.get("ReturnData", True)]
        metric = (returned[0].get("Label") or returned[0].get("Id")) if returned else ""
    threshold = item.get("Threshold")
    return Alarm(
        name=str(item["AlarmName"]),
        state=str(item.get("StateValue", "")),
        reason=str(item.get("StateReason", "")),
        metric=str(metric),
        threshold=None if threshold is None else float(threshold),
        period_s=int(item["Period"]) if item.get("Period") else None,
        evaluation_periods=int(item["EvaluationPeriods"]) if item.get("EvaluationPeriods") else None,
        actions=tuple(str(a) for a in item.get("AlarmActions") or ()),
    )
