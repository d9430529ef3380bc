"""``shipyard invoke URL --data FILE|-``."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer
from rich.console import Console

out = Console()


def register(app: typer.Typer) -> None:
    app.command("invoke")(invoke)


def invoke(
    target: str = typer.Argument(..., help="URL of a server (http://127.0.0.1:8080), or a deployment's name."),
    data: str = typer.Option(..., "--data", "-d", help="File to send, or - for standard input."),
    content_type: str | None = typer.Option(
        None, "--content-type", "-t", help="Content-Type.", show_default="from the file's suffix, else JSON"
    ),
    accept: str | None = typer.Option(
        None, "--accept", "-a", help="Accept header.", show_default="the request's Content-Type"
    ),
    raw: bool = typer.Option(False, "--raw", help="Print the body as the server sent it."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the answer."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write predictions here as they arrive (.jsonl or .csv); a rerun resumes."
    ),
    chunk: bool | None = typer.Option(
        None,
        "--chunk/--single",
        help="Split the rows into requests, or send one.",
        show_default="split over 64 rows, or with --output",
    ),
    limits: str | None = typer.Option(
        None,
        "--limits",
        help="Endpoint limits: realtime (6 MB/60 s), serverless (4 MB).",
        show_default="the deployment's, else realtime",
    ),
    max_payload_mb: float | None = typer.Option(None, "--max-payload-mb", help="Override the payload limit."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Override the per-request time limit (s)."),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Requests in flight when splitting."),
    max_items: int | None = typer.Option(None, "--max-items", help="At most this many rows per request."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue an existing --output file."),
) -> None:
    """Send a request to POST /invocations and print the predictions.

    Inputs of any size work: a list of rows larger than one batch (or any input with --output) is split into
    requests that fit the endpoint's payload and time limits, sent CONCURRENCY at a time with retries, and
    the answers are put back in order.
    """
    from shipyard.cli import invoke_chunked
    from shipyard.client.chunked import LIMITS
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
    kind = content_type or content_type_for(data)
    from shipyard.cli.deploy import resolve_invoke_target

    name = target
    target, deployment = resolve_invoke_target(target)  # a deployment's name: its local URL, or sagemaker-runtime
    if limits is None:
        record = deployment.state.get(name) if deployment is not None else None
        limits = "serverless" if record is not None and record.serverless else "realtime"
    rows = None
    if chunk is not False:
        rows = invoke_chunked.should_chunk(body, kind, LIMITS.get(limits, LIMITS["realtime"]), output)
        if chunk and rows is None:
            rows = invoke_chunked.read_items(body, kind)
    if rows is not None:
        invoke_chunked.run(
            invoke_chunked.Destination(target, name if deployment is not None else None, deployment),
            rows,
            content_type=kind,
            limits_name=limits,
            max_payload_mb=max_payload_mb,
            time_limit=time_limit,
            concurrency=concurrency,
            max_items=max_items,
            output=output,
            resume=resume,
            raw=raw,
        )
        return
    if deployment is not None and not target:  # sagemaker: InvokeEndpoint through boto3
        answer = deployment.invoke(name, body, content_type=kind, accept=accept, timeout=timeout)
    else:
        answer = send(target, body, content_type=kind, accept=accept, timeout=timeout)
    if raw or not answer.content_type.startswith("application/json"):
        sys.stdout.buffer.write(answer.body if answer.body.endswith(b"\n") else answer.body + b"\n")
        return
    document = answer.json()
    predictions = document.get("predictions") if isinstance(document, dict) else document
    if not isinstance(predictions, list):
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    title = f"{len(predictions)} predictions in {answer.seconds * 1000:.1f} ms"
    out.print(invoke_chunked.predictions_table(predictions, title, "--raw"))
