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

from shipyard.client.chunked import ChunkedInvoker, Limits, Summary
from shipyard.client.rows import ResultWriter, format_for

if TYPE_CHECKING:
    from shipyard.deploy.endpoint import Destination

__all__ = ["ChunkOptions", "predictions_table", "run"]

out = Console()
err = Console(stderr=True)


@dataclass(frozen=True)
class ChunkOptions:
    """How ``shipyard invoke`` splits and where the answers go."""

    content_type: str
    limits: Limits
    concurrency: int
    max_items: int | None
    output: Path | None
    resume: bool
    raw: bool


def run(destination: Destination, rows: list[Any], options: ChunkOptions) -> None:
    """Send ``rows`` in chunks through the destination's transport, then print or write the predictions."""
    writer = ResultWriter(options.output, resume=options.resume) if options.output is not None else None
    collected: list[Any] = []
    try:
        summary = _send(destination, rows, options, writer, collected)
    finally:
        if writer is not None:
            writer.close()
    _report(summary, writer, collected, options.raw)


def _send(
    destination: Destination, rows: list[Any], options: ChunkOptions, writer: ResultWriter | None, collected: list[Any]
) -> Summary:
    start = min(writer.done, len(rows)) if writer is not None else 0
    on_results = (lambda _first, predictions: writer.write(predictions)) if writer else _extend(collected)
    columns = (
        TextColumn("[bold]invoke"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    limits = options.limits
    transport = destination.transport(read_timeout_s=limits.read_timeout_s, connections=max(4, options.concurrency))
    try:
        invoker = ChunkedInvoker(
            transport,
            row_format=format_for(options.content_type),
            limits=limits,
            concurrency=options.concurrency,
            max_items=options.max_items,
        )
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("invoke", total=len(rows), completed=start)
            return invoker.run(
                rows,
                start=start,
                on_results=on_results,
                on_progress=lambda done, _: progress.update(task, completed=done),
            )
    finally:
        transport.close()


def _extend(collected: list[Any]) -> Any:
    def on_results(_first: int, predictions: list[Any]) -> None:
        collected.extend(predictions)

    return on_results


def _report(summary: Summary, writer: ResultWriter | None, collected: list[Any], raw: bool) -> None:
    sent = summary.items - summary.skipped
    note = (
        f"{sent} rows in {summary.requests} requests, {summary.seconds:.1f} s"
        f" ({sent / max(summary.seconds, 1e-9):.0f} rows/s)"
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
