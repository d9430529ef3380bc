"""``shipyard invoke`` for inputs of any size: split, send, reassemble, write as answers arrive."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shipyard.client.chunked import LIMITS, ChunkedInvoker, Limits
from shipyard.client.rows import ResultWriter, format_for, read_items
from shipyard.client.transport import HTTPTransport, Transport
from shipyard.errors import ClientError

if TYPE_CHECKING:
    from shipyard.deploy.api import Deployer

__all__ = ["Destination", "read_items", "run", "should_chunk"]

out = Console()
err = Console(stderr=True)

AUTO_CHUNK_ROWS = 64  # more rows than one server batch: split, so no request nears the time limit


def should_chunk(body: bytes, content_type: str, limits: Limits, output: Path | None) -> list[Any] | None:
    """The rows to send in chunks, or None when the body goes as one request (as before)."""
    if output is None and len(body) < limits.max_payload_bytes * 0.9 and len(body) < 64 * 1024:
        # Small bodies (the usual hand-written request) keep the single-request path and its exact answer.
        try:
            rows = read_items(body, content_type)
        except ClientError:
            return None
        if all(isinstance(row, int | float) for row in rows):
            return None  # a flat list of numbers may be one row sent bare: split only when asked (--chunk)
        return rows if len(rows) > AUTO_CHUNK_ROWS else None
    try:
        return read_items(body, content_type)
    except ClientError:
        if output is not None:
            raise
        return None


@dataclass(frozen=True)
class Destination:
    """Where the rows go: a URL, or a deployment (whose target says how: HTTP, or InvokeEndpoint)."""

    url: str
    deployment: str | None = None
    deployer: Deployer | None = None

    def open(self, *, read_timeout_s: float, connections: int) -> Transport:
        if self.deployer is not None and self.deployment is not None:
            return self.deployer.transport(self.deployment, read_timeout_s=read_timeout_s, connections=connections)
        return HTTPTransport(self.url, max_connections=connections)


def run(
    destination: Destination,
    rows: list[Any],
    *,
    content_type: str,
    limits_name: str,
    max_payload_mb: float | None,
    time_limit: float | None,
    concurrency: int,
    max_items: int | None,
    output: Path | None,
    resume: bool,
    raw: bool,
) -> None:
    base = LIMITS.get(limits_name)
    if base is None:
        raise ClientError(f"--limits {limits_name}: use one of {', '.join(LIMITS)}")
    limits = Limits(
        int(max_payload_mb * 1024 * 1024) if max_payload_mb else base.max_payload_bytes,
        time_limit or base.time_limit_s,
    )
    writer = ResultWriter(output, resume=resume) if output is not None else None
    start = min(writer.done, len(rows)) if writer is not None else 0
    collected: list[Any] = []

    def on_results(first: int, predictions: list[Any]) -> None:
        if writer is not None:
            writer.write(predictions)
        else:
            collected.extend(predictions)

    columns = (
        TextColumn("[bold]invoke"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    transport: Transport | None = None
    try:
        transport = destination.open(read_timeout_s=limits.read_timeout_s, connections=max(4, concurrency))
        invoker = ChunkedInvoker(
            transport, row_format=format_for(content_type), limits=limits, concurrency=concurrency, max_items=max_items
        )
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("invoke", total=len(rows), completed=start)
            summary = invoker.run(
                rows,
                start=start,
                on_results=on_results,
                on_progress=lambda done, _: progress.update(task, completed=done),
            )
    finally:
        if transport is not None:
            transport.close()
        if writer is not None:
            writer.close()
    note = (
        f"{summary.items - summary.skipped} rows in {summary.requests} requests, {summary.seconds:.1f} s"
        f" ({(summary.items - summary.skipped) / max(summary.seconds, 1e-9):.0f} rows/s)"
        + (f", {summary.retries} retries" if summary.retries else "")
        + (f", {summary.splits} splits" if summary.splits else "")
        + (f", {summary.skipped} already answered" if summary.skipped else "")
    )
    if writer is not None:
        err.print(f"{note}; predictions in [bold]{writer.path}[/] (one per line, in input order)")
        return
    if raw:
        sys.stdout.buffer.write(b"".join(orjson.dumps(value) + b"\n" for value in collected))
        err.print(note)
        return
    out.print(predictions_table(collected, f"{len(collected)} predictions: {note}", "--output FILE or --raw"))


def predictions_table(predictions: list[Any], title: str, for_all: str, shown: int = 50) -> Table:
    """The first ``shown`` predictions as a table; the caption says how to get them all."""
    table = Table(title=title)
    table.add_column("#", justify="right", style="dim")
    table.add_column("prediction")
    for index, value in enumerate(predictions[:shown]):
        table.add_row(str(index), orjson.dumps(value).decode())
    if len(predictions) > shown:
        table.caption = f"… {len(predictions) - shown} more (use {for_all} for all)"
    return table
