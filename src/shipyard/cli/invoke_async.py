"""``shipyard invoke NAME --async --data FILE [--wait] [-o FILE]`` and ``shipyard results NAME ID``: asynchronous
inference on either target (``deploy --async``).

``invoke --async`` puts the input where the endpoint reads it (S3, or the local deployment's directory), queues
it, and prints the inference id and the output location (``--json``: one ``shipyard.invoke-async/1`` document);
``--wait`` polls the output and failure locations with a live display (how long the request has been queued or
running), until its outcome or ``--timeout`` (default 7 h: SageMaker's default RequestTTLSeconds, the 6 h a
request may wait in the queue, plus the longest run, 1 h), then prints the answer (or writes it to ``-o FILE``).
``results NAME ID`` looks once: the answer (exit 0), the failure's message (exit 4), or "still
running" (exit 75, sysexits' EX_TEMPFAIL: try again later).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

if TYPE_CHECKING:
    from shipyard.deploy.asynchronous import AsyncHandle, AsyncOutcome

out = Console()
err = Console(stderr=True)

__all__ = ["invoke_async", "register", "results"]

# --wait's default limit: a request may wait in the queue up to RequestTTLSeconds (6 h by default), then run up to
# InvocationTimeoutSeconds (at most 1 h); --timeout sets another
WAIT_DEFAULT_S = 6 * 3600.0 + 3600.0


def register(app: typer.Typer) -> None:
    app.command("results")(results)


def invoke_async(
    name: str,
    body: bytes,
    *,
    content_type: str,
    accept: str | None,
    wait: bool,
    output: Path | None,
    inference_id: str | None,
    invocation_timeout: int | None,
    as_json: bool,
    raw: bool,
    wait_s: float | None = None,
) -> None:
    from shipyard.cli.deploy import deployer_for
    from shipyard.deploy.endpoint import is_url
    from shipyard.errors import InvokeError

    if is_url(name):
        raise InvokeError(
            f"--async queues a request on a deployment made with `deploy --async`: give its name, not {name}"
        )
    deployer = deployer_for(None)
    handle = deployer.invoke_async(
        name, body, content_type=content_type, accept=accept, inference_id=inference_id, timeout_s=invocation_timeout
    )
    if not wait:
        _report(handle, None, output, as_json, "invoke-async")
        return
    if not as_json:
        err.print(
            f"queued {handle.inference_id} → {handle.output_location}", highlight=False, markup=False, soft_wrap=True
        )
    outcome = _wait(handle, WAIT_DEFAULT_S if wait_s is None else wait_s)
    _finish(handle, outcome, output, as_json, raw, "invoke-async")


def results(
    name: str = typer.Argument(..., help="The deployment (made with deploy --async)."),
    inference_id: str = typer.Argument(..., help="The inference id `invoke --async` printed."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Write the answer to this file."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the answer (with a progress display)."),
    timeout: float = typer.Option(
        WAIT_DEFAULT_S,
        "--timeout",
        help="With --wait: give up after this long (s); the default is 7 h.",
        show_default=False,
    ),
    raw: bool = typer.Option(False, "--raw", help="Print the body as the endpoint wrote it."),
    output: Output = OUTPUT_OPTION,
) -> None:
    """The outcome of an asynchronous inference: its answer (exit 0), its failure's message (exit 4), or still
    running (exit 75)."""
    from shipyard.cli.deploy import deployer_for

    handle = deployer_for(None).async_handle(name, inference_id)
    outcome = _wait(handle, timeout) if wait else handle.poll()
    _finish(handle, outcome, file, output == Output.json, raw, "results")


def _wait(handle: AsyncHandle, limit_s: float) -> AsyncOutcome:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(_progress(handle), total=None)
        return handle.wait(limit_s, on_poll=lambda _elapsed: progress.update(task, description=_progress(handle)))


def _progress(handle: AsyncHandle) -> str:
    """How long the request has been queued or running (since it was queued, not since this command began)."""
    seconds = max(0, int(time.time() - handle.invocation.submitted_at))
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"waiting for {handle.inference_id}: queued or running for {hours}:{minute:02d}:{second:02d}"


def _document(handle: AsyncHandle, status: str, output: Path | None, message: str | None) -> dict[str, Any]:
    invocation = handle.invocation
    return {
        "name": invocation.endpoint,
        "inference_id": invocation.inference_id,
        "status": status,
        "input_location": invocation.input_location,
        "output_location": invocation.output_location,
        "failure_location": invocation.failure_location,
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(invocation.submitted_at)),
        "output_file": str(output) if output else None,
        "message": message,
    }


def _report(
    handle: AsyncHandle, outcome: AsyncOutcome | None, output: Path | None, as_json: bool, command: str
) -> None:
    status = "queued" if outcome is None else outcome.status
    if as_json:
        print_json(command, _document(handle, status, output, outcome.message if outcome and outcome.message else None))
        return
    out.print(f"inference id: {handle.inference_id}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"output:       {handle.output_location}", highlight=False, markup=False, soft_wrap=True)
    if handle.failure_location:
        out.print(f"failure:      {handle.failure_location}", highlight=False, markup=False, soft_wrap=True)
    if outcome is None:
        out.print(
            f"later: shipyard results {handle.invocation.endpoint} {handle.inference_id}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _finish(
    handle: AsyncHandle, outcome: AsyncOutcome, output: Path | None, as_json: bool, raw: bool, command: str
) -> None:
    """The outcome printed (or written to ``output``); a failure exits 4, still running 75."""
    from shipyard.deploy.asynchronous import DONE, RUNNING
    from shipyard.errors import InvokeError, StillRunning

    if outcome.status == DONE and output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(outcome.body)
    if as_json:
        print_json(
            command,
            _document(handle, outcome.status, output if outcome.status == DONE else None, outcome.message or None),
        )
        if outcome.status == DONE:
            return
        raise typer.Exit(StillRunning.exit_code if outcome.status == RUNNING else InvokeError.exit_code)
    if outcome.status == RUNNING:
        raise StillRunning(
            f"inference {handle.inference_id} is still running (its answer will be at {handle.output_location}); "
            f"ask again later: shipyard results {handle.invocation.endpoint} {handle.inference_id}"
        )
    if outcome.status != DONE:
        raise InvokeError(f"inference {handle.inference_id} failed: {outcome.message}")
    if output is not None:
        err.print(f"wrote {len(outcome.body)} bytes to {output}", highlight=False, markup=False, soft_wrap=True)
        return
    from shipyard.cli.invoke import print_answer
    from shipyard.client.transport import Reply

    print_answer(Reply(200, outcome.body, outcome.content_type), raw)
