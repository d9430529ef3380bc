"""``shipyard invoke URL --data FILE|-``."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

out = Console()


def register(app: typer.Typer) -> None:
    app.command("invoke")(invoke)


def invoke(
    target: str = typer.Argument(..., help="URL of a server (http://127.0.0.1:8080)."),
    data: str = typer.Option(..., "--data", "-d", help="File to send, or - for standard input."),
    content_type: str | None = typer.Option(
        None, "--content-type", "-t", help="Content-Type [default: from the file's suffix, else JSON]."
    ),
    accept: str | None = typer.Option(None, "--accept", "-a", help="Accept header [default: the request's type]."),
    raw: bool = typer.Option(False, "--raw", help="Print the body as the server sent it."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the answer."),
) -> None:
    """Send a request to POST /invocations and print the predictions."""
    from shipyard.client.http import content_type_for
    from shipyard.client.http import invoke as send
    from shipyard.errors import ClientError

    if data == "-":
        body = sys.stdin.buffer.read()
    else:
        path = Path(data)
        if not path.is_file():
            raise ClientError(f"--data {data}: no such file")
        body = path.read_bytes()
    answer = send(target, body, content_type=content_type or content_type_for(data), accept=accept, timeout=timeout)
    if raw or not answer.content_type.startswith("application/json"):
        sys.stdout.buffer.write(answer.body if answer.body.endswith(b"\n") else answer.body + b"\n")
        return
    document = answer.json()
    predictions = document.get("predictions") if isinstance(document, dict) else document
    if not isinstance(predictions, list):
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{len(predictions)} predictions in {answer.seconds * 1000:.1f} ms")
    table.add_column("#", justify="right", style="dim")
    table.add_column("prediction")
    for index, value in enumerate(predictions[:50]):
        table.add_row(str(index), orjson.dumps(value).decode())
    if len(predictions) > 50:
        table.caption = f"… {len(predictions) - 50} more (use --raw for all)"
    out.print(table)
