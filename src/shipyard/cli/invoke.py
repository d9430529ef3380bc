"""``shipyard invoke URL --data FILE|-``: parse, pick the destination, send (one request or in chunks), print."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from shipyard.client.chunked import Limits
    from shipyard.client.transport import Reply

out = Console()


def register(app: typer.Typer) -> None:
    from shipyard.cli import invoke_async

    app.command("invoke")(invoke)
    invoke_async.register(app)


TargetArg = Annotated[str, typer.Argument(help="URL of a server (http://127.0.0.1:8080), or a deployment's name.")]
DataOpt = Annotated[str, typer.Option("--data", "-d", help="File to send, or - for standard input.")]
ContentTypeOpt = Annotated[
    str | None,
    typer.Option("--content-type", "-t", help="Content-Type.", show_default="from the file's suffix, else JSON"),
]
AcceptOpt = Annotated[
    str | None, typer.Option("--accept", "-a", help="Accept header.", show_default="the request's Content-Type")
]
RawOpt = Annotated[bool, typer.Option("--raw", help="Print the body as the server sent it.")]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds to wait for the answer (with --async --wait: for its outcome, queue time included).",
        show_default="60; with --async --wait 7 h",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write predictions here as they arrive (.jsonl or .csv); a rerun resumes."),
]
ChunkOpt = Annotated[
    bool | None,
    typer.Option(
        "--chunk/--single",
        help="Split the rows into requests, or send one.",
        show_default="split over 64 rows, or with --output",
    ),
]
LimitsOpt = Annotated[
    str | None,
    typer.Option(
        "--limits",
        help="Endpoint limits: realtime (6 MB/60 s), serverless (4 MB).",
        show_default="the deployment's, else realtime",
    ),
]
MaxPayloadOpt = Annotated[float | None, typer.Option("--max-payload-mb", help="Override the payload limit.")]
TimeLimitOpt = Annotated[float | None, typer.Option("--time-limit", help="Override the per-request time limit (s).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight when splitting.")]
MaxItemsOpt = Annotated[int | None, typer.Option("--max-items", help="At most this many rows per request.")]
ViaOpt = Annotated[
    str,
    typer.Option(
        "--via",
        help="endpoint or api. With a deployment's name: straight to the endpoint, or through its public API "
        "(shipyard expose), as its callers reach it.",
        show_default=True,
    ),
]
StreamOpt = Annotated[
    bool,
    typer.Option(
        "--stream",
        help="Read the answer as a stream (a handler whose predict_fn yields): print (or write to --output) each "
        "chunk as it arrives; a sagemaker deployment through InvokeEndpointWithResponseStream.",
    ),
]
ResumeOpt = Annotated[bool, typer.Option("--resume/--restart", help="Continue an existing --output file.")]
AsyncOpt = Annotated[
    bool,
    typer.Option(
        "--async",
        help="Queue the request on a deployment made with `deploy --async` (up to 1 GB, an hour); prints the "
        "inference id and output location (later: shipyard results NAME ID).",
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait", help="With --async: wait for the answer, then print it (or -o).")]
InferenceIdOpt = Annotated[str | None, typer.Option("--inference-id", help="With --async: the id to use.")]
InvocationTimeoutOpt = Annotated[
    int | None,
    typer.Option(
        "--invocation-timeout", help="With --async: seconds it may take (1-3600).", show_default="the deployment's"
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="With --async: one JSON document (shipyard.invoke-async/1); with --stream: one at the end (chunks, "
        "bytes, time to first byte).",
    ),
]
TargetModelOpt = Annotated[
    str | None,
    typer.Option(
        "--target-model",
        help="A multi-model endpoint's model, e.g. a.tar.gz (InvokeEndpoint TargetModel; over HTTP the "
        "X-Amzn-SageMaker-Target-Model header).",
        show_default="none",
    ),
]


def invoke(
    target: TargetArg,
    data: DataOpt,
    content_type: ContentTypeOpt = None,
    accept: AcceptOpt = None,
    raw: RawOpt = False,
    timeout: TimeoutOpt = None,
    output: OutputOpt = None,
    chunk: ChunkOpt = None,
    limits: LimitsOpt = None,
    max_payload_mb: MaxPayloadOpt = None,
    time_limit: TimeLimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
    max_items: MaxItemsOpt = None,
    resume: ResumeOpt = True,
    via: ViaOpt = "endpoint",
    stream: StreamOpt = False,
    async_: AsyncOpt = False,
    wait: WaitOpt = False,
    inference_id: InferenceIdOpt = None,
    invocation_timeout: InvocationTimeoutOpt = None,
    json_: JsonOpt = False,
    target_model: TargetModelOpt = None,
) -> None:
    """Send a request to POST /invocations and print the predictions.

    Inputs of any size work: a list of rows larger than one batch (or any input with --output) is split into
    requests that fit the endpoint's payload and time limits, sent CONCURRENCY at a time with retries, and
    the answers are put back in order.
    """
    from shipyard.cli import invoke_chunked
    from shipyard.cli.deploy import deployer_for
    from shipyard.client.chunked import should_chunk
    from shipyard.client.rows import read_items
    from shipyard.codecs.media import content_type_for
    from shipyard.deploy.endpoint import destination

    _refuse_combinations(stream=stream, async_=async_, target_model=target_model, chunk=chunk, via=via)
    body = _read_body(data)
    kind = content_type or content_type_for(data)
    if async_:
        from shipyard.cli.invoke_async import invoke_async

        invoke_async(
            target,
            body,
            content_type=kind,
            accept=accept,
            wait=wait,
            output=output,
            inference_id=inference_id,
            invocation_timeout=invocation_timeout,
            wait_s=timeout,
            as_json=json_,
            raw=raw,
        )
        return
    _sync_only(wait=wait, inference_id=inference_id, invocation_timeout=invocation_timeout)
    timeout = 60.0 if timeout is None else timeout
    # a name: its local URL, or sagemaker-runtime; --via api: its public API
    where = destination(target, lambda: deployer_for(None), via=via)
    if target_model:
        where = dataclasses.replace(where, target_model=target_model)
    if stream:
        from shipyard.cli.invoke_stream import run_stream

        run_stream(where, body, content_type=kind, accept=accept, timeout_s=timeout, output=output, summary=json_)
        return
    if json_:
        from shipyard.errors import UsageError

        raise UsageError("--json goes with --async or --stream")
    fits = _limits(limits, where.serverless, max_payload_mb, time_limit, behind_api=where.via == "api")
    rows = should_chunk(body, kind, fits, output) if chunk is not False else None
    if chunk and rows is None:
        rows = read_items(body, kind)
    if rows is not None:
        options = invoke_chunked.ChunkOptions(kind, fits, concurrency, max_items, output, resume, raw)
        invoke_chunked.run(where, rows, options)
        return
    print_answer(where.invoke(body, content_type=kind, accept=accept, timeout_s=timeout), raw)


def _refuse_combinations(*, stream: bool, async_: bool, target_model: str | None, chunk: bool | None, via: str) -> None:
    """The options that cannot go together, refused before anything is read or sent."""
    from shipyard.errors import UsageError

    if stream and async_:
        raise UsageError("--stream and --async are two ways to answer: choose one")
    if async_ and target_model:
        raise UsageError(
            "--target-model does not go with --async: InvokeEndpointAsync has no TargetModel (an asynchronous "
            "endpoint hosts one model)"
        )
    if async_ and chunk:
        raise UsageError("--chunk does not go with --async: an asynchronous request takes up to 1 GB in one piece")
    if async_ and via == "api":
        raise UsageError("--via api does not go with --async: the public API invokes the endpoint synchronously")
    if stream and target_model:
        raise UsageError(
            "--stream does not go with --target-model: InvokeEndpointWithResponseStream has no TargetModel "
            "(a multi-model endpoint cannot stream)"
        )


def _sync_only(**given: object) -> None:
    from shipyard.errors import InvokeError

    for flag, value in given.items():
        if value not in (None, False):
            raise InvokeError(f"--{flag.replace('_', '-')} is for asynchronous requests: add --async")


def _read_body(data: str) -> bytes:
    from shipyard.errors import InvokeError

    if data == "-":
        return sys.stdin.buffer.read()
    path = Path(data)
    if not path.is_file():
        raise InvokeError(f"--data {data}: no such file")
    return path.read_bytes()


def _limits(
    name: str | None,
    serverless: bool,
    max_payload_mb: float | None,
    time_limit: float | None,
    *,
    behind_api: bool = False,
) -> Limits:
    from shipyard.client.chunked import LIMITS, limits_for
    from shipyard.errors import InvokeError

    try:
        return limits_for(
            name,
            serverless=serverless,
            max_payload_mb=max_payload_mb,
            time_limit_s=time_limit,
            behind_api=behind_api,
        )
    except InvokeError:
        raise InvokeError(f"--limits {name}: use one of {', '.join(LIMITS)}") from None


def print_answer(answer: Reply, raw: bool) -> None:
    from shipyard.cli import invoke_chunked

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
