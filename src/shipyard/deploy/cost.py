"""What Shipyard's deployments cost and what keeps billing: prices, the budget, ``status --all``.

The one place that puts ``cloud/`` (the Price List API, Budgets, the tags) together with ``pricing`` (the
shipped tables and their cache):

* :func:`prices_for`: the on-demand hosting prices of a region, from the cache when it is fresh (read less than
  :data:`CACHE_DAYS` ago), else from the Price List API when there are credentials (then cached with the time
  they were read), else the last cached ones however old, else the table shipped with Shipyard; a table that
  is not the region's current one says so, and why, in its ``source``. Every estimate carries that source.
* :func:`set_budget`, :func:`budget_status`, :func:`remove_budget`: ``shipyard budget``.
* :func:`billing`: everything in a region that carries Shipyard's tag and still bills, deployment by
  deployment, compared with the state file (``recorded``, ``orphan``: AWS has it, no record names it, or
  ``gone``: a record naming nothing left on AWS).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shipyard.cloud.budgets import ALERTS, TIME_UNITS, BudgetsGateway
from shipyard.cloud.pricelist import PriceListGateway
from shipyard.cloud.session import TAG_KEY, Aws
from shipyard.cloud.tagging import TaggingGateway
from shipyard.deploy.base import DELETED, FAILED
from shipyard.deploy.state import Deployment, StateStore, now_utc
from shipyard.errors import CloudError, ShipyardError, SpecError
from shipyard.pricing import (
    PRICE_LIST_SOURCE,
    PriceTable,
    cloudwatch_prices,
    prices,
    read_cached,
    write_cached,
)
from shipyard.settings import Settings

__all__ = [
    "CACHE_DAYS",
    "Billing",
    "BillingEntry",
    "BillingResource",
    "BudgetAlert",
    "BudgetStatus",
    "billing",
    "budget_status",
    "cache_path",
    "parse_budget",
    "prices_for",
    "remove_budget",
    "set_budget",
]

CACHE_DAYS = 7
"""Prices read from AWS less than this many days ago are used without asking again."""

DEFAULT_BUDGET = "shipyard"

MAX_EMAILS = 10
"""Email subscribers a Budgets notification takes at most (CreateBudget: Subscribers, 10 EMAIL + 1 SNS)."""


# -- prices -------------------------------------------------------------------------------------------------
def cache_path(settings: Settings, region: str) -> Path:
    """Where the Price List API's hosting prices of ``region`` are kept (under ``SHIPYARD_CACHE_DIR``)."""
    return settings.cache_dir / "prices" / f"sagemaker-hosting-{region}.json"


def prices_for(region: str | None, aws: Aws | None, settings: Settings, *, now: datetime | None = None) -> PriceTable:
    """The hosting prices to estimate a deployment in ``region`` with (see the module's docstring).

    Never fails: whatever goes wrong asking AWS (no credentials, no permission ``pricing:GetProducts``, no
    network, an answer without hosting prices) falls back, and the table's ``source`` says why.
    """
    shipped = prices()
    if not region:
        return shipped
    now = now or now_utc()
    path = cache_path(settings, region)
    cached = read_cached(path)
    if cached is not None and now - cached[1] < timedelta(days=CACHE_DAYS):
        return cached[0]
    asked = _ask_price_list(region, aws, settings, path, now)
    if isinstance(asked, PriceTable):
        return asked
    reason = asked
    if cached is not None:
        table, fetched = cached
        return dataclasses.replace(table, source=f"{table.source}, cached {fetched:%Y-%m-%d}; not refreshed: {reason}")
    where = "" if region == shipped.region else f", not {region}'s"
    return dataclasses.replace(shipped, source=f"the table shipped with Shipyard{where}; {reason}")


def _ask_price_list(region: str, aws: Aws | None, settings: Settings, path: Path, now: datetime) -> PriceTable | str:
    """The Price List API's table for ``region`` (cached), or why there is none."""
    if aws is None:
        return "no AWS session to ask the Price List API"
    try:
        aws.check_credentials()
        hourly = PriceListGateway(aws).hosting_prices(region)
    except ShipyardError as exc:
        return f"the Price List API could not be read ({_why(exc)})"
    if not hourly:
        return f"the Price List API has no SageMaker hosting prices for {region}"
    shipped = prices()
    table = PriceTable(
        region=region,
        as_of=f"{now:%Y-%m-%d}",
        source=PRICE_LIST_SOURCE,
        currency="USD",
        hours_per_month=shipped.hours_per_month,
        instance_hourly=hourly,
        serverless_per_gb_second=shipped.serverless_per_gb_second,  # not asked: serverless bills per request
    )
    with contextlib.suppress(OSError):  # a read-only cache: the prices are still this run's
        write_cached(path, table, now)
    return table


def _why(exc: ShipyardError) -> str:
    """A failure in a few words, for a line printed under a table: AWS's operation and error code
    (``GetProducts: AccessDeniedException``), else the message's first line."""
    code, operation = getattr(exc, "aws_code", None), getattr(exc, "operation", None)
    if code and operation:
        return f"{operation}: {code}"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first if len(first) <= 200 else first[:199] + "…"


# -- the budget -----------------------------------------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BUDGET = re.compile(r"^\$?(?P<amount>\d+(?:\.\d{1,2})?)\s*/\s*(?P<period>[a-z]+)$")


def parse_budget(text: str) -> tuple[float, str]:
    """``10/month`` → ``(10.0, "MONTHLY")``; ``100/quarter``, ``1000/year`` likewise."""
    match = _BUDGET.match(text.strip().lower())
    forms = "e.g. 10/month, 100/quarter or 1000/year"
    if match is None:
        raise SpecError(f"budget {text!r}: give an amount in USD per period, {forms}", option="amount")
    if match["period"] not in TIME_UNITS:
        raise SpecError(
            f"budget {text!r}: Budgets' periods are month, quarter and year, not {match['period']!r} ({forms})",
            option="amount",
        )
    if float(match["amount"]) <= 0:
        raise SpecError(f"budget {text!r}: give an amount above 0 USD ({forms})", option="amount")
    return float(match["amount"]), TIME_UNITS[match["period"]]


@dataclass(frozen=True)
class BudgetAlert:
    kind: str  # ACTUAL | FORECASTED
    threshold_pct: float
    subscribers: tuple[str, ...] | None  # None: could not be read (the reason is in BudgetStatus.warnings)


@dataclass(frozen=True)
class BudgetStatus:
    name: str
    limit_usd: float
    time_unit: str
    actual_usd: float | None
    forecast_usd: float | None
    filter: dict[str, Any]
    alerts: tuple[BudgetAlert, ...]
    warnings: tuple[str, ...] = ()


def set_budget(aws: Aws, amount: str, *, name: str = DEFAULT_BUDGET, emails: Sequence[str] = ()) -> bool:
    """Create the budget ``name`` (``amount``: ``10/month``...); an existing one of that name is replaced.

    Replaced by DeleteBudget then CreateBudget rather than UpdateBudget: UpdateBudget changes the limit and
    filter only (the alerts and subscribers take CreateNotification/DeleteNotification/CreateSubscriber
    calls each), and one path that rewrites everything at once is easier to trust; what is lost is the
    budget's history of past periods. Whether one was replaced is returned.
    """
    amount_usd, time_unit = parse_budget(amount)
    for email in emails:
        if not _EMAIL.match(email):
            raise SpecError(f"notify {email!r}: give an email address (Budgets mails its alerts)", option="notify")
    if len(set(emails)) > MAX_EMAILS:  # checked here: AWS would refuse it only after the old budget is deleted
        raise SpecError(
            f"--notify given {len(set(emails))} addresses: a Budgets alert mails at most {MAX_EMAILS} (use a "
            "mailing list)",
            option="notify",
        )
    emails = list(dict.fromkeys(emails))
    gateway = BudgetsGateway(aws)
    replaced = gateway.delete(name)
    try:
        gateway.create(name, amount_usd=amount_usd, time_unit=time_unit, emails=emails)
    except CloudError as exc:
        if replaced:
            exc.args = (f"{exc} (the budget {name} it replaces was deleted first: run `shipyard budget set` again)",)
        raise
    return replaced


def budget_status(aws: Aws, *, name: str = DEFAULT_BUDGET) -> BudgetStatus | None:
    """The budget ``name``: its limit, spend so far and forecast, alerts and who they mail, and what could
    not be checked (the cost allocation tag's activation, subscribers AWS did not list); None: no budget."""
    gateway = BudgetsGateway(aws)
    budget = gateway.describe(name)
    if budget is None:
        return None
    warnings: list[str] = []
    alerts = []
    for notification in gateway.notifications(name):
        subscribers: tuple[str, ...] | None
        try:
            subscribers = tuple(s["Address"] for s in gateway.subscribers(name, notification))
        except ShipyardError as exc:
            subscribers = None
            kind = notification["NotificationType"]
            warnings.append(f"the subscribers of the {kind} alert could not be read ({_why(exc)})")
        alerts.append(BudgetAlert(notification["NotificationType"], float(notification["Threshold"]), subscribers))
    if not alerts:
        warnings.append("no alerts: `shipyard budget set AMOUNT --notify EMAIL` adds them")
    warnings.extend(_tag_warnings(gateway))
    spend = budget.get("CalculatedSpend") or {}
    order = {(kind, pct): i for i, (kind, pct) in enumerate(ALERTS)}
    return BudgetStatus(
        name=name,
        limit_usd=float(budget["BudgetLimit"]["Amount"]),
        time_unit=str(budget["TimeUnit"]),
        actual_usd=_amount(spend.get("ActualSpend")),
        forecast_usd=_amount(spend.get("ForecastedSpend")),
        filter=dict(budget.get("FilterExpression") or {"CostFilters": budget.get("CostFilters") or {}}),
        alerts=tuple(sorted(alerts, key=lambda a: order.get((a.kind, a.threshold_pct), len(order)))),
        warnings=tuple(warnings),
    )


def _tag_warnings(gateway: BudgetsGateway) -> list[str]:
    activate = (
        f"activate {TAG_KEY} as a cost allocation tag (Billing console → Cost allocation tags); the budget counts "
        "tagged costs only from then on"
    )
    try:
        status = gateway.tag_activation(TAG_KEY)
    except ShipyardError as exc:
        return [f"whether the tag filter works could not be checked ({_why(exc)}); {activate}"]
    if status == "Active":
        return []
    if status is None:
        return [f"Billing has not seen the tag {TAG_KEY} yet (it lists a tag up to 24 hours after a tagged "
                f"resource is billed): {activate}"]  # fmt: skip
    return [f"the tag {TAG_KEY} is {status} as a cost allocation tag, so the budget counts nothing: {activate}"]


def _amount(spend: dict[str, Any] | None) -> float | None:
    return None if not spend or spend.get("Amount") is None else float(spend["Amount"])


def remove_budget(aws: Aws, *, name: str = DEFAULT_BUDGET) -> bool:
    """Delete the budget ``name``; False when there was none."""
    return BudgetsGateway(aws).delete(name)


# -- what still bills -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BillingResource:
    kind: str
    id: str
    bills: str  # how: "0.115 $/hour", "per GB-month stored", "0.10 $/month"...
    hourly_usd: float | None = None


@dataclass
class BillingEntry:
    name: str
    state: str  # recorded | orphan | gone
    status: str | None
    resources: list[BillingResource] = field(default_factory=list)
    remove: str | None = None  # how to remove it, for an orphan

    @property
    def hourly_usd(self) -> float:
        return sum(r.hourly_usd or 0.0 for r in self.resources)


@dataclass(frozen=True)
class Billing:
    region: str
    entries: list[BillingEntry]
    price_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def hourly_usd(self) -> float:
        return sum(e.hourly_usd for e in self.entries)


# Kinds that cost nothing while they exist (roles, models, configs, the API's parts billed per request).
_FREE = {"role", "api-role", "guard-role", "model", "endpoint-config", "autoscaling", "usage-plan", "api-key"}


def billing(aws: Aws, state: StateStore, settings: Settings) -> Billing:
    """Everything in ``aws.region`` carrying Shipyard's tag, by deployment, compared with ``state``.

    Read-only: the resources are found as ``status --reconcile`` finds them
    (:func:`~shipyard.deploy.sagemaker.reconcile.reconcile`, which writes nothing here), plus what only the
    Tagging API knows of (GetResources by the tag key: schedules, rules, state machines), and the state file is
    not changed.
    """
    from shipyard.deploy.sagemaker.reconcile import reconcile

    found = reconcile(aws)
    table = prices_for(aws.region, aws, settings)
    notes: list[str] = []
    extra: dict[str, list[str]] = {}
    try:
        for arn, tags in TaggingGateway(aws).tagged(TAG_KEY).items():
            if arn.split(":")[2] not in _RECONCILED_SERVICES:
                extra.setdefault(tags[TAG_KEY], []).append(arn)
    except ShipyardError as exc:
        notes.append(f"the Tagging API could not be read ({exc}): resources only it finds are not listed")
    recorded = {r.name: r for r in state.all() if r.target == "sagemaker" and r.region == aws.region}
    entries = []
    for name in sorted(set(found) | set(recorded) | set(extra)):
        live, record = found.get(name), recorded.get(name)
        kept = "orphan" if record is None else "recorded" if live is not None or name in extra else "gone"
        status = live.status if live is not None and live.one("endpoint") else record.status if record else None
        entry = BillingEntry(name=name, state=kept, status=status)
        if live is not None:
            entry.resources = [_billed(live, r.kind, r.id, table) for r in live.resources if r.kind not in _FREE]
        known = {r.id for r in live.resources} if live is not None else set()
        entry.resources += [
            BillingResource("tagged", arn, "see its service's pricing")
            for arn in extra.get(name, [])
            if not {arn, arn.rsplit(":", 1)[-1], arn.rsplit("/", 1)[-1]} & known  # reconcile has it already
        ]
        if entry.state == "orphan":
            entry.remove = f"shipyard status --reconcile --region {aws.region} && shipyard cleanup {name}"
        entries.append(entry)
    return Billing(aws.region, entries, table.described, notes)


_RECONCILED_SERVICES = {"sagemaker", "ecr", "iam", "logs", "apigateway", "cloudwatch", "sns", "secretsmanager", "s3"}


def _billed(dep: Deployment, kind: str, ident: str, table: PriceTable) -> BillingResource:
    if kind == "endpoint":
        if dep.serverless or dep.status in {DELETED, FAILED}:
            what = "per second of inference (serverless)" if dep.serverless else f"{dep.status}: nothing"
            return BillingResource(kind, ident, what, 0.0)
        hourly = table.hourly(dep.instance_type, dep.instance_count)
        size = f"{dep.instance_count} × {dep.instance_type}"
        return BillingResource(kind, ident, f"{size}: {'?' if hourly is None else f'{hourly:.3f}'} $/hour", hourly)
    cloudwatch = cloudwatch_prices()
    how = {
        "ecr-repository": "per GB-month of images stored",
        "s3-prefix": "per GB-month stored",
        "log-group": "per GB ingested and stored",
        "alarm": f"{cloudwatch.alarm_metric_monthly:.2f} $/month per metric",
        "idle-alarm": f"{cloudwatch.alarm_metric_monthly:.2f} $/month per metric",
        "scaling-alarm": f"{cloudwatch.alarm_metric_monthly:.2f} $/month per metric",
        "dashboard": f"{cloudwatch.dashboard_monthly:.2f} $/month beyond {cloudwatch.free_dashboards} free",
        "sns-topic": "per notification sent",
        "rest-api": "per request",
        "api-key-secret": "0.40 $/month per secret",
        "ttl-schedule": "per invocation (free tier: 14 million/month)",
        "idle-rule": "free (AWS service events)",
        "state-machine": "per state transition",
    }
    return BillingResource(kind, ident, how.get(kind, "see its service's pricing"))
