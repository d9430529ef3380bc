"""``shipyard expose NAME`` / ``shipyard unexpose NAME``: a deployment on a public HTTPS API, and off it again.

On ``sagemaker``: an API Gateway REST API in front of the endpoint; on ``local``: a front on 127.0.0.1 with
the same behaviour. Both go through ``Deployer.expose``/``unexpose``. The table view prints the URL, the
auth, the limits, what API Gateway's limits mean for this endpoint (``limit_warnings``) and a curl line;
the API key only with ``--show-key``, once (it is kept in Secrets Manager, or the local key file, after).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.cli.deploy import STATE_OPTION, CliReporter, deployer_for
from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

if TYPE_CHECKING:
    from shipyard.deploy.expose import Exposure
    from shipyard.deploy.state import Deployment

__all__ = ["curl_line", "expose", "register", "unexpose"]

out = Console()
DEFAULT_QUOTA = "100000/month"  # a key's requests are bounded unless asked otherwise (--quota none)


def register(app: typer.Typer) -> None:
    app.command("expose")(expose)
    app.command("unexpose")(unexpose)


def expose(
    name: str = typer.Argument(..., help="The deployment to put on a public API."),
    auth: str = typer.Option("api-key", "--auth", help="api-key (x-api-key header), iam (SigV4) or none."),
    rate: float = typer.Option(50.0, "--rate", help="Steady requests per second (the throttle)."),
    burst: int = typer.Option(100, "--burst", help="Requests at once above the rate (the token bucket)."),
    quota: str | None = typer.Option(
        None,
        "--quota",
        help="Requests per key per day/week/month (--auth api-key only); none for no quota.",
        show_default=f"{DEFAULT_QUOTA} with --auth api-key",
    ),
    path: str = typer.Option("/predict", "--path", help="The path callers POST to."),
    show_key: bool = typer.Option(False, "--show-key", help="Print the API key (once; it is kept for you after)."),
    output: Output = OUTPUT_OPTION,
    state: Path | None = STATE_OPTION,
) -> None:
    """Put a deployment on a public HTTPS API: throttled, with an API key, SigV4 or no auth."""
    from shipyard.deploy.expose import ExposeOptions, limit_warnings

    if quota is None:
        quota = DEFAULT_QUOTA if auth == "api-key" else None
    elif quota.lower() == "none":
        quota = None
    options = ExposeOptions.parse(auth=auth, rate=rate, burst=burst, quota=quota, path=path)
    deployer = deployer_for(state, CliReporter())
    exposure, key = deployer.expose(name, options)
    record = deployer.record(name)
    warnings = limit_warnings(record, options)
    shown = key if show_key else None
    if output is Output.json:
        print_json("expose", _document(name, exposure, shown, warnings, curl_line(record, exposure)))
        return
    _print(record, exposure, shown, warnings)


def unexpose(
    name: str = typer.Argument(..., help="The deployment whose public API to remove."),
    output: Output = OUTPUT_OPTION,
    state: Path | None = STATE_OPTION,
) -> None:
    """Remove a deployment's public API (nothing to do when it has none); the deployment stays."""
    deployer = deployer_for(state, CliReporter())
    deleted = deployer.unexpose(name)
    if output is Output.json:
        print_json("unexpose", {"name": name, "deleted": deleted})
        return
    if not deleted:
        out.print(f"{escape(name)} had no public API: nothing to remove", highlight=False)
        return
    out.print(f"removed the public API of {escape(name)} ({len(deleted)} resources)", highlight=False)


def curl_line(record: Deployment, exposure: Exposure) -> str:
    """How to call the API with curl (the key read where it is kept; SigV4 with curl's --aws-sigv4)."""
    parts = ["curl", "-X", "POST", shlex.quote(exposure.url), "-H", "'Content-Type: application/json'"]
    if exposure.auth == "api-key" and exposure.key_ref:
        if record.target == "sagemaker":
            read = (
                f"aws secretsmanager get-secret-value --secret-id {shlex.quote(exposure.key_ref)} "
                f"--region {record.region} --query SecretString --output text"
            )
        else:
            read = f"cat {shlex.quote(exposure.key_ref)}"
        parts += ["-H", f'"x-api-key: $({read})"']
    elif exposure.auth == "iam":
        parts += [
            "--aws-sigv4",
            f"'aws:amz:{record.region}:execute-api'",
            "--user",
            '"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"',
            "-H",
            '"x-amz-security-token: $AWS_SESSION_TOKEN"',  # temporary credentials (SSO, a role) need it
        ]
    return " ".join([*parts, "--data-binary", "@request.json"])


def _document(name: str, exposure: Exposure, key: str | None, warnings: list[str], curl: str) -> dict[str, Any]:
    """``shipyard expose --output json`` (docs/schemas/expose.v1.json)."""
    return {
        "name": name,
        "url": exposure.url,
        "auth": exposure.auth,
        "path": exposure.path,
        "rate": exposure.rate,
        "burst": exposure.burst,
        "quota": exposure.quota,
        "stage": exposure.stage,
        "api_id": exposure.api_id,
        "key_id": exposure.key_id,
        "usage_plan_id": exposure.usage_plan_id,
        "role_arn": exposure.role_arn,
        "front_pid": exposure.front_pid,
        "front_port": exposure.front_port,
        "key_ref": exposure.key_ref,
        "key": key,
        "warnings": warnings,
        "curl": curl,
    }


def _print(record: Deployment, exposure: Exposure, key: str | None, warnings: list[str]) -> None:
    limits = f"{exposure.rate:g} requests/s, bursts of {exposure.burst}"
    if exposure.quota:
        limits += f", quota {exposure.quota} per key"
    lines = [
        f"[bold]{escape(record.name)}[/] is public at [cyan]{escape(exposure.url)}[/]",
        f"  auth    {escape(exposure.auth)}"
        + (f" (key kept in {escape(exposure.key_ref)})" if exposure.key_ref else ""),
        f"  limits  {escape(limits)}",
    ]
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
    if key is not None:
        out.print(f"  key     {escape(key)}", highlight=False, soft_wrap=True)
    for warning in warnings:
        out.print(f"[yellow]note:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    out.print("call it:", highlight=False)
    out.print(f"  {curl_line(record, exposure)}", highlight=False, markup=False, soft_wrap=True)
