"""``shipyard status``: the deployments, as a table that fits the terminal or as JSON.

The columns a user acts on (name, state, endpoint: the URL to send requests to) are never cut. When the
table is wider than the terminal, the least useful columns are left out first (created, $/hour, $ so far,
age, size, TTL, target: the order of :data:`OPTIONAL`); when even the three that matter do not fit, each
deployment is printed as a few lines instead, which the terminal wraps but never cuts. Printed to a pipe or
a file (not a terminal), the table keeps its natural width unless ``COLUMNS`` is set: nothing there wraps it.

``status NAME`` adds that deployment's health after its row: each alarm (name, metric, state, threshold) and the
figures of a recent window (sagemaker: the last hour from CloudWatch; local: the server's ``/metrics``); with
``--output json``, a ``health`` object. ``status`` without a name makes no such calls.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from shipyard.cli.deploy import STATE_OPTION, deployer_for, name_the_flag
from shipyard.cli.output import OUTPUT_OPTION, Output, print_json
from shipyard.cli.tables import print_fitted

if TYPE_CHECKING:
    from shipyard.deploy import StatusRow
    from shipyard.deploy.base import Health
    from shipyard.deploy.cost import Billing

TAG = "shipyard:deployment"  # cloud.session.TAG_KEY, written out: importing cloud here would load boto3

__all__ = [
    "OPTIONAL",
    "billing_json",
    "health_json",
    "register",
    "render",
    "render_billing",
    "render_health",
    "status",
    "to_json",
]

out = Console()

ESSENTIAL = ("name", "state", "endpoint")
# Optional columns, the most useful first: the last ones are the first left out.
OPTIONAL = ("target", "TTL", "size", "age", "$ so far", "$/hour", "created")
ORDER = ("name", "target", "state", "endpoint", "size", "created", "age", "TTL", "$/hour", "$ so far")


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    name: str | None = typer.Argument(None, help="One deployment.", show_default="all"),
    reconcile: bool = typer.Option(False, "--reconcile", help="Rebuild the list from AWS tags and the engine."),
    region: str | None = typer.Option(
        None, "--region", help="Region for --reconcile and --all.", show_default="the AWS configuration's"
    ),
    everything: bool = typer.Option(
        False, "--all", help="Add what still bills in the region from the tags, orphans included (read-only)."
    ),
    output: Output = OUTPUT_OPTION,
    state: Path | None = STATE_OPTION,
) -> None:
    """List deployments: state, endpoint, size, age, TTL and estimated cost (list prices)."""
    deployer = deployer_for(state)
    if reconcile:
        try:
            deployer.reconcile(region)
        except Exception as exc:
            name_the_flag(exc)  # "no AWS region ... (--region)"
            raise
    rows = deployer.status(name)
    sources = _sources(rows)
    label = "; ".join(sources)
    bills = _billing(deployer, region) if everything else None
    health, unhealthy = _health(deployer, name) if name else (None, None)
    if output is Output.json:
        document: dict[str, Any] = {
            "state_file": str(deployer.state.path.absolute()),
            "prices": label,
            "deployments": [to_json(r) for r in rows],
            "total": _total_json(rows),
            "price_sources": sources,
        }
        if bills is not None:
            document["billing"] = billing_json(bills)
        if name:
            document["health"] = health_json(health) if health else None
            if health is None and unhealthy:
                document["health_error"] = unhealthy
        print_json("status", document)
        return
    if rows:
        caption = "estimates from the prices below" if any(r.price_source for r in rows) else _shipped_caption()
        render(rows, title=f"deployments ({deployer.state.path})", caption=caption)
        _print_total(rows, sources)
    if health is not None:
        render_health(health)
    elif unhealthy:
        out.print(f"health: {unhealthy}", highlight=False, markup=False, soft_wrap=True)
    for row in rows:
        if row.failure and row.status not in {"InService"}:
            out.print(f"{row.name}: {row.failure}", highlight=False, markup=False, soft_wrap=True)
        if row.ended_by:
            text = f"{row.name}: {row.ended_by}; `shipyard cleanup {row.name}` removes the rest"
            out.print(text, highlight=False, markup=False, soft_wrap=True)
        elif row.expired:
            out.print(f"[yellow]{escape(row.name)} is past its TTL: `shipyard cleanup --expired` deletes it[/]")
        if name:
            for line in row.guards:
                out.print(f"guard: {line}", highlight=False, markup=False, soft_wrap=True)
    if not rows:
        out.print("no deployments")
    if bills is not None:
        render_billing(bills)


def render(rows: list[StatusRow], *, title: str, caption: str, console: Console | None = None) -> None:
    """Print ``rows`` as the most informative table that fits (see the module's docstring)."""
    console = console or out
    cells = [_cells(row) for row in rows]
    table = [[row[column] for column in ORDER] for row in cells]
    money = [column for column in ORDER if column.startswith("$")]
    if not print_fitted(
        console, ORDER, table, required=ESSENTIAL, optional=OPTIONAL, title=title, caption=caption, right=money
    ):
        _print_as_lines(console, cells)
        console.print(caption, highlight=False, markup=False, soft_wrap=True)


def to_json(row: StatusRow) -> dict[str, Any]:
    """One deployment in ``shipyard status --output json`` (docs/schemas/status.v1.json)."""
    return {
        "name": row.name,
        "target": row.target,
        "status": row.status,
        "url": row.url,
        "region": row.region,
        "size": row.size,
        "instance_type": row.instance_type,
        "instance_count": row.instance_count,
        "serverless": row.serverless,
        "created_at": row.created.isoformat(),
        "age_s": int(row.age.total_seconds()),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "expired": row.expired,
        "hourly_usd": row.hourly_usd,
        "so_far_usd": None if row.so_far_usd is None else round(row.so_far_usd, 4),
        "failure": row.failure,
        "price_source": row.price_source,
        "guards": list(row.guards),
        "ended_by": row.ended_by,
    }


# -- cost: the total, the price sources, `--all` (deploy/cost.py) ----------------------------------------
def _sources(rows: list[StatusRow]) -> list[str]:
    """Where the rows' prices came from, each once (the shipped table's when no row needed prices)."""
    from shipyard.pricing import prices

    found = list(dict.fromkeys(r.price_source for r in rows if r.price_source))
    shipped = prices()
    return found or [shipped.described]


def _shipped_caption() -> str:
    from shipyard.pricing import prices

    return f"estimates from {prices().label}"


def _totals(rows: list[StatusRow]) -> tuple[float, float, bool]:
    """$/hour now and $ so far summed over ``rows``, and whether a row without a price was left out."""
    hourly = sum(r.hourly_usd or 0.0 for r in rows)
    so_far = sum(r.so_far_usd or 0.0 for r in rows)
    return hourly, so_far, any(r.hourly_usd is None or r.so_far_usd is None for r in rows)


def _total_json(rows: list[StatusRow]) -> dict[str, Any]:
    hourly, so_far, partial = _totals(rows)
    return {"hourly_usd": round(hourly, 4), "so_far_usd": round(so_far, 4), "partial": partial}


def _print_total(rows: list[StatusRow], sources: list[str], console: Console | None = None) -> None:
    console = console or out
    hourly, so_far, partial = _totals(rows)
    unknown = " (without the deployments marked ?: no price for them)" if partial else ""
    console.print(f"total: ${hourly:.3f}/hour now, ${so_far:.2f} so far{unknown}", highlight=False, markup=False)
    if any(r.price_source for r in rows):  # local deployments cost nothing: no prices to name
        for source in sources:
            console.print(f"prices: {source}", highlight=False, markup=False)


def _billing(deployer: Any, region: str | None) -> Billing:
    """What still bills in ``region`` (deploy/cost.billing: read-only, the state file is not changed)."""
    from shipyard.cloud.session import Aws
    from shipyard.deploy.cost import billing

    try:
        return billing(Aws(region), deployer.state, deployer.settings)
    except Exception as exc:
        name_the_flag(exc)  # "no AWS region ... (--region)"
        raise


def billing_json(bills: Billing) -> dict[str, Any]:
    """``status --all --output json``'s ``billing`` (docs/schemas/status.v1.json)."""
    return {
        "region": bills.region,
        "hourly_usd": round(bills.hourly_usd, 4),
        "price_source": bills.price_source,
        "notes": list(bills.notes),
        "deployments": [
            {
                "name": entry.name,
                "state": entry.state,
                "status": entry.status,
                "hourly_usd": round(entry.hourly_usd, 4),
                "remove": entry.remove,
                "resources": [
                    {"kind": r.kind, "id": r.id, "bills": r.bills, "hourly_usd": r.hourly_usd} for r in entry.resources
                ],
            }
            for entry in bills.entries
        ],
    }


def render_billing(bills: Billing, console: Console | None = None) -> None:
    """Each deployment AWS still bills for, its resources, and how to remove an orphan."""
    from rich.table import Table

    console = console or out
    if not bills.entries:
        console.print(f"nothing tagged {TAG} bills in {bills.region}", highlight=False, markup=False)
    else:
        table = Table(title=f"what still bills in {bills.region} (from the tags)")
        for column in ("deployment", "record", "kind", "resource", "bills"):
            table.add_column(column, overflow="fold")
        for entry in bills.entries:
            cells = [(r.kind, r.id, r.bills) for r in entry.resources] or [("–", "nothing left on AWS", "")]
            for i, cell in enumerate(cells):
                head = (entry.name, entry.state) if i == 0 else ("", "")
                table.add_row(*(Text(text) for text in (*head, *cell)))
        console.print(table)
    console.print(f"total: ${bills.hourly_usd:.3f}/hour in {bills.region}", highlight=False, markup=False)
    console.print(f"prices: {bills.price_source}", highlight=False, markup=False)
    for entry in bills.entries:
        if entry.remove:
            console.print(f"{entry.name} has no record here (an orphan): `{entry.remove}` removes it",
                          highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    for note in bills.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)


def _health(deployer: Any, name: str) -> tuple[Health | None, str | None]:
    """The health of ``name``, or why there is none (a target that cannot tell, AWS unreachable...)."""
    from shipyard.errors import ShipyardError

    try:
        return deployer.health(name), None
    except ShipyardError as exc:
        return None, str(exc)


def _figure(value: float | None, unit: str = "") -> str:
    """A count whole (8,179); a latency to 3 significant digits, whole from 100 on (1.62 ms, 24.5 ms, 1,250 ms)."""
    if value is None:
        return "–"
    if not unit or abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def render_health(health: Health, console: Console | None = None) -> None:
    """The alarms as a table, then the window's figures on one line, then the notes."""
    console = console or out
    if health.alarms:
        from rich.table import Table

        table = Table(title="alarms")
        for column in ("alarm", "metric", "state", "threshold"):
            table.add_column(column, overflow="fold")
        colour = {"OK": "green", "ALARM": "red"}
        for alarm in health.alarms:
            state = Text(alarm.state, style=colour.get(alarm.state, "yellow"))
            table.add_row(Text(alarm.name), Text(alarm.metric), state, Text(alarm.threshold))
        console.print(table)
    figures = (
        f"{health.window}: invocations {_figure(health.invocations)}, 4xx {_figure(health.errors_4xx)}, "
        f"5xx {_figure(health.errors_5xx)}, latency p50 {_figure(health.p50_ms, ' ms')}, "
        f"p99 {_figure(health.p99_ms, ' ms')}"
    )
    extra = "".join(f", {key} {_figure(value)}" for key, value in health.extra.items())
    console.print(figures + extra, highlight=False, markup=False, soft_wrap=True)
    for note in health.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)


def health_json(health: Health) -> dict[str, Any]:
    """``health`` in ``shipyard status NAME --output json`` (docs/schemas/status.v1.json)."""
    return {
        "window": health.window,
        "alarms": [
            {"name": a.name, "metric": a.metric, "state": a.state, "reason": a.reason, "threshold": a.threshold}
            for a in health.alarms
        ],
        "invocations": health.invocations,
        "errors_4xx": health.errors_4xx,
        "errors_5xx": health.errors_5xx,
        "p50_ms": health.p50_ms,
        "p99_ms": health.p99_ms,
        "extra": dict(health.extra),
        "notes": list(health.notes),
    }


def _cells(row: StatusRow) -> dict[str, Text]:
    ttl = "–"
    if row.expires_at:
        ttl = "expired" if row.expired else f"{_age(row.expires_at - row.created - row.age)} left"
    endpoint = row.url if row.target == "local" else f"{row.region} (sagemaker-runtime)" if row.region else None
    values = {
        "name": row.name,
        "target": row.target,
        "state": row.status,
        "endpoint": endpoint or "–",
        "size": row.size,
        "created": row.created.strftime("%Y-%m-%d %H:%M"),
        "age": _age(row.age),
        "TTL": ttl,
        "$/hour": "?" if row.hourly_usd is None else f"{row.hourly_usd:.3f}",
        "$ so far": "?" if row.so_far_usd is None else f"{row.so_far_usd:.2f}",
    }
    styled = {key: Text(value) for key, value in values.items()}  # Text: a name or URL is never read as markup
    if row.expired:
        styled["TTL"].stylize("red")
    return styled


def _print_as_lines(console: Console, cells: list[dict[str, Text]]) -> None:
    """Each deployment as a few lines: for a terminal too narrow for even name, state and endpoint."""
    for row in cells:
        console.print(Text.assemble((row["name"].plain, "bold")))
        for column in ("state", "endpoint", "target", "size", "age", "TTL", "$ so far"):
            console.print(Text.assemble(f"  {column}: ", row[column]))


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"
