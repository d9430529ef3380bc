"""A dated price table for cost estimates (``status``, ``deploy --dry-run``).

AWS's Price List API is not something a deploy should depend on (extra permissions, slow, no offline
answer), so the list prices of SageMaker hosting in us-east-1 are kept in the repository with their date
and source (``sagemaker-us-east-1.json``), and those of training jobs beside them
(``sagemaker-training-us-east-1.json``, the same structure without the serverless part), and CloudWatch's
alarms and dashboards (``cloudwatch-us-east-1.json``: what a deployment's alarms and dashboard add).
Every figure derived from them is an estimate and is labelled so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

__all__ = ["CloudWatchPrices", "PriceTable", "cloudwatch_prices", "prices", "training_prices"]


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    source: str
    currency: str
    hours_per_month: float
    instance_hourly: dict[str, float]
    serverless_per_gb_second: float = 0.0  # hosting only

    def hourly(self, instance_type: str | None, count: int = 1) -> float | None:
        """List price per hour of ``count`` instances (``None``: not in the table)."""
        if instance_type is None:
            return None
        price = self.instance_hourly.get(instance_type)
        return None if price is None else price * count

    def monthly(self, instance_type: str | None, count: int = 1) -> float | None:
        hourly = self.hourly(instance_type, count)
        return None if hourly is None else hourly * self.hours_per_month

    def serverless_per_second(self, memory_mb: int) -> float:
        """Price of one second of one serverless invocation with ``memory_mb`` (idle costs nothing)."""
        return self.serverless_per_gb_second * memory_mb / 1024

    def for_seconds(self, instance_type: str | None, seconds: float, count: int = 1) -> float | None:
        """List price of ``count`` instances for ``seconds`` (billed per second); ``None``: not in the table."""
        hourly = self.hourly(instance_type, count)
        return None if hourly is None else hourly * seconds / 3600

    @property
    def label(self) -> str:
        return f"{self.region} list prices of {self.as_of}"


@dataclass(frozen=True)
class CloudWatchPrices:
    """List prices of CloudWatch alarms (per alarm metric) and dashboards, per month."""

    as_of: str
    source: str
    alarm_metric_monthly: float
    dashboard_monthly: float
    free_dashboards: int

    def alarm(self, metrics: int = 1) -> float:
        """One standard-resolution alarm reading ``metrics`` metrics (metric math: each one is billed)."""
        return self.alarm_metric_monthly * metrics


@functools.cache
def cloudwatch_prices() -> CloudWatchPrices:
    """CloudWatch's alarm and dashboard prices shipped with Shipyard."""
    raw: dict[str, Any] = orjson.loads(
        resources.files("shipyard.pricing").joinpath("cloudwatch-us-east-1.json").read_bytes()
    )
    return CloudWatchPrices(
        as_of=raw["as_of"],
        source=raw["source"],
        alarm_metric_monthly=float(raw["alarm_metric_monthly"]),
        dashboard_monthly=float(raw["dashboard_monthly"]),
        free_dashboards=int(raw["free_dashboards"]),
    )


@functools.cache
def prices() -> PriceTable:
    """The SageMaker hosting price table shipped with Shipyard."""
    return _load("sagemaker-us-east-1.json")


@functools.cache
def training_prices() -> PriceTable:
    """The SageMaker training price table shipped with Shipyard (``serverless_per_gb_second`` is 0)."""
    return _load("sagemaker-training-us-east-1.json")


def _load(name: str) -> PriceTable:
    raw: dict[str, Any] = orjson.loads(resources.files("shipyard.pricing").joinpath(name).read_bytes())
    return PriceTable(
        region=raw["region"],
        as_of=raw["as_of"],
        source=raw["source"],
        currency=raw["currency"],
        hours_per_month=float(raw["hours_per_month"]),
        instance_hourly={k: float(v) for k, v in raw["instance_hourly"].items()},
        serverless_per_gb_second=float(raw.get("serverless", {}).get("per_gb_second", 0.0)),
    )
