"""``shipyard budget set|status|remove``: an AWS Budgets cost budget over Shipyard's tagged resources.

``set 10/month --notify EMAIL`` creates the budget (replacing one of the same name) with alerts on actual spend
above 80 % and 100 % and on forecast spend above 100 %; ``status`` prints the limit, the spend so far, the
forecast, each alert and who it mails, the filter, and what could not be checked (the cost allocation tag);
``remove`` deletes it. Budgets is a global service (us-east-1's endpoint, the whole account): ``--region``
only chooses the session. The calls are in deploy/cost.py and cloud/budgets.py (docs/cost.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from shipyard.cli.deploy import name_the_flag
from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

if TYPE_CHECKING:
    from shipyard.cloud.session import Aws
    from shipyard.deploy.cost import BudgetStatus

__all__ = ["budget_json", "register"]

out = Console()
budget_app = typer.Typer(help="An AWS Budgets cost budget over Shipyard's resources.", no_args_is_help=True)

FLAGS = {"amount": "AMOUNT", "notify": "--notify", "region": "--region"}
NAME_OPTION = typer.Option("shipyard", "--name", help="The budget's name (one account holds many).")
REGION_OPTION = typer.Option(
    None, "--region", help="The session's region (Budgets itself is global).", show_default="the AWS configuration's"
)


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")


def _aws(region: str | None) -> Aws:
    from shipyard.cloud.session import Aws

    return Aws(region)


@budget_app.command("set")
def set_(
    amount: str = typer.Argument(..., help="USD per period: 10/month, 100/quarter or 1000/year."),
    notify: list[str] = typer.Option([], "--notify", help="Mail the alerts to this address (repeat for more)."),
    name: str = NAME_OPTION,
    region: str | None = REGION_OPTION,
) -> None:
    """Create the budget (replacing one of the same name): actual > 80 % and 100 %, forecast > 100 %."""
    from shipyard.deploy.cost import parse_budget, set_budget

    try:
        parse_budget(amount)  # a bad form fails before any AWS call
        replaced = set_budget(_aws(region), amount, name=name, emails=notify)
    except Exception as exc:
        name_the_flag(exc, FLAGS)
        raise
    verb = "replaced" if replaced else "created"
    say = f"budget {name} {verb}: {amount} over the costs tagged shipyard:deployment; "
    if notify:
        say += f"alerts (actual > 80 % and 100 %, forecast > 100 %) mail {', '.join(notify)}"
    else:
        say += "no alerts (--notify EMAIL adds them)"
    out.print(say, highlight=False, markup=False, soft_wrap=True)
    out.print(
        "activate shipyard:deployment as a cost allocation tag (Billing console → Cost allocation tags) or the "
        "budget counts nothing; `shipyard budget status` checks it",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@budget_app.command("status")
def status(name: str = NAME_OPTION, region: str | None = REGION_OPTION, output: Output = OUTPUT_OPTION) -> None:
    """The limit, the spend so far and the forecast, the alerts and who they mail, the filter, the warnings."""
    from shipyard.deploy.cost import budget_status

    try:
        found = budget_status(_aws(region), name=name)
    except Exception as exc:
        name_the_flag(exc, FLAGS)
        raise
    if output is Output.json:
        print_json("budget", {"name": name, "budget": budget_json(found) if found else None})
        return
    if found is None:
        out.print(f"no budget named {name}: `shipyard budget set 10/month --notify EMAIL` creates it", markup=False)
        return
    _render(found)


@budget_app.command("remove")
def remove(name: str = NAME_OPTION, region: str | None = REGION_OPTION) -> None:
    """Delete the budget (its alerts go with it)."""
    from shipyard.deploy.cost import remove_budget

    try:
        removed = remove_budget(_aws(region), name=name)
    except Exception as exc:
        name_the_flag(exc, FLAGS)
        raise
    out.print(f"budget {name} {'deleted' if removed else 'was already gone'}", highlight=False, markup=False)


def budget_json(found: BudgetStatus) -> dict[str, Any]:
    """``shipyard budget status --output json``'s ``budget`` (docs/schemas/budget.v1.json)."""
    return {
        "limit_usd": found.limit_usd,
        "time_unit": found.time_unit,
        "actual_usd": found.actual_usd,
        "forecast_usd": found.forecast_usd,
        "filter": found.filter,
        "alerts": [
            {
                "type": alert.kind,
                "threshold_pct": alert.threshold_pct,
                "subscribers": None if alert.subscribers is None else list(alert.subscribers),
            }
            for alert in found.alerts
        ],
        "warnings": list(found.warnings),
    }


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def _render(found: BudgetStatus) -> None:
    import json

    period = {"MONTHLY": "month", "QUARTERLY": "quarter", "ANNUALLY": "year"}.get(found.time_unit, found.time_unit)
    lines = [
        f"budget {found.name}: {_money(found.limit_usd)} per {period}",
        f"  actual so far: {_money(found.actual_usd)}   forecast: {_money(found.forecast_usd)}",
        f"  filter: {json.dumps(found.filter, separators=(',', ':'))}",
    ]
    for alert in found.alerts:
        who = "?" if alert.subscribers is None else ", ".join(alert.subscribers) or "nobody"
        lines.append(f"  alert: {alert.kind.lower()} > {alert.threshold_pct:g} % → {who}")
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    for warning in found.warnings:
        out.print(f"warning: {warning}", style="yellow", highlight=False, markup=False, soft_wrap=True)
