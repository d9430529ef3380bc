"""A dated price table for cost estimates (``status``, ``deploy --dry-run``).

AWS's Price List API is not something a deploy should depend on (extra permissions, slow, no offline
answer), so the list prices of SageMaker hosting in us-east-1 are kept in the repository with their date
and source (``sagemaker-us-east-1.json``), and those of training jobs beside them
(``sagemaker-training-us-east-1.json``, the same structure without the serverless part), and CloudWatch's
alarms and dashboards (``cloudwatch-us-east-1.json``: what a deployment's alarms and dashboard add).
Every figure derived from them is an estimate and is labelled so.

The current prices of a region, when read from AWS's Price List API (``deploy/cost.py`` asks it), are kept
as a document of the same structure under the cache folder, with the time they were read
(:func:`write_cached`, :func:`read_cached`); :func:`table_from_document` reads either kind.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "PRICE_LIST_SOURCE",
    "CloudWatchPrices",
    "PriceTable",
    "cloudwatch_prices",
    "prices",
    "read_cached",
    "table_document",
    "table_from_document",
    "training_prices",
    "write_cached",
]

PRICE_LIST_SOURCE = "AWS Price List API"
"""The ``source`` of a table read from AWS (GetProducts), as opposed to the shipped tables' page URL."""


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

    @property
    def described(self) -> str:
        """What an estimate names as its prices: ``us-east-1 list prices of 2026-12-03 (AWS Price List API)``."""
        return f"{self.label} ({self.source})"


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
    return table_from_document(orjson.loads(resources.files("shipyard.pricing").joinpath(name).read_bytes()))


def table_from_document(raw: dict[str, Any]) -> PriceTable:
    """A table from its document: a shipped one, or a cached answer of the Price List API."""
    return PriceTable(
        region=raw["region"],
        as_of=raw["as_of"],
        source=raw["source"],
        currency=raw["currency"],
        hours_per_month=float(raw["hours_per_month"]),
        instance_hourly={k: float(v) for k, v in raw["instance_hourly"].items()},
        serverless_per_gb_second=float(raw.get("serverless", {}).get("per_gb_second", 0.0)),
    )


def table_document(table: PriceTable, *, fetched_at: datetime | None = None) -> dict[str, Any]:
    """``table`` as the document :func:`table_from_document` reads (``fetched_at``: when AWS was asked)."""
    return {
        "region": table.region,
        "as_of": table.as_of,
        "source": table.source,
        "currency": table.currency,
        "hours_per_month": table.hours_per_month,
        "instance_hourly": dict(sorted(table.instance_hourly.items())),
        "serverless": {"per_gb_second": table.serverless_per_gb_second},
        **({"fetched_at": fetched_at.isoformat()} if fetched_at else {}),
    }


def write_cached(path: Path, table: PriceTable, fetched_at: datetime) -> None:
    """Keep ``table`` at ``path`` with the time it was read (written whole, then renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(orjson.dumps(table_document(table, fetched_at=fetched_at), option=orjson.OPT_INDENT_2))
    partial.replace(path)


def read_cached(path: Path) -> tuple[PriceTable, datetime] | None:
    """The table kept at ``path`` and when it was read; None when there is none or it cannot be read (a
    damaged cache is asked for again, never an error)."""
    try:
        raw: dict[str, Any] = orjson.loads(path.read_bytes())
        fetched = datetime.fromisoformat(str(raw["fetched_at"]))
        return table_from_document(raw), fetched if fetched.tzinfo else fetched.replace(tzinfo=UTC)
    except (OSError, ValueError, KeyError, TypeError):
        return None
