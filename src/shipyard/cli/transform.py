"""``shipyard transform SOURCE --input … --output …``: a batch transform job, locally or on SageMaker."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from shipyard.deploy.transform import FileResult, TransformResult
    from shipyard.deploy.transform.sagemaker import JobResult

err = Console(stderr=True)
out = Console()

COMMAND = "transform"
FLAGS = {
    "source": "SOURCE",
    "input": "--input",
    "output": "--output",
    "target": "--target",
    "split_type": "--split-type",
    "strategy": "--strategy",
    "max_payload_mb": "--max-payload-mb",
    "max_concurrent": "--max-concurrent",
    "join_source": "--join-source",
    "input_filter": "--input-filter",
    "output_filter": "--output-filter",
    "assemble_with": "--assemble-with",
    "content_type": "--content-type",
    "accept": "--accept",
    "instance_type": "--instance-type",
    "instance_count": "--instance-count",
    "job_name": "--job-name",
    "image": "--image",
    "role_arn": "--role-arn",
    "environment": "--env",
}


def register(app: typer.Typer) -> None:
    app.command(COMMAND)(transform)


def transform(
    source: Annotated[
        str,
        typer.Argument(
            help="A bundle directory or model.tar.gz, a deployment's name, a registry GROUP/VERSION, run:NAME, "
            "a server's URL (local), or a SageMaker model's name (sagemaker)."
        ),
    ],
    input: Annotated[str, typer.Option("--input", "-i", help="A file, a directory, or s3://… (every object).")],
    output: Annotated[str, typer.Option("--output", "-o", help="A directory or s3://…: <input>.out per input.")],
    target: Annotated[str, typer.Option("--target", help="local or sagemaker.")] = "local",
    split_type: Annotated[str, typer.Option("--split-type", help="Line or None.")] = "Line",
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="MultiRecord or SingleRecord.", show_default="the container's answer"),
    ] = None,
    max_payload_mb: Annotated[
        int | None,
        typer.Option("--max-payload-mb", help="0 (no limit) to 100.", show_default="the container's, else 6"),
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option("--max-concurrent", help="Requests in flight.", show_default="the container's workers"),
    ] = None,
    join_source: Annotated[str, typer.Option("--join-source", help="None or Input.")] = "None",
    input_filter: Annotated[
        str | None, typer.Option("--input-filter", help="JSONPath applied to each record, e.g. '$[1:]'.")
    ] = None,
    output_filter: Annotated[
        str | None, typer.Option("--output-filter", help="JSONPath applied to each (joined) answer.")
    ] = None,
    assemble_with: Annotated[str, typer.Option("--assemble-with", help="Line or None.")] = "Line",
    content_type: Annotated[
        str | None, typer.Option("--content-type", "-t", help="The input's type.", show_default="from its suffix")
    ] = None,
    accept: Annotated[
        str | None, typer.Option("--accept", "-a", help="The answers' type.", show_default="the Content-Type")
    ] = None,
    instance_type: Annotated[str, typer.Option("--instance-type", help="The job's instances (sagemaker).")] = (
        "ml.m5.large"
    ),
    instance_count: Annotated[int, typer.Option("--instance-count", help="How many (sagemaker).")] = 1,
    job_name: Annotated[str | None, typer.Option("--job-name", help="The job's name (sagemaker).")] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Run this image (sagemaker: the ECR image of a bundle's model).")
    ] = None,
    role_arn: Annotated[str | None, typer.Option("--role-arn", help="A bundle's model's role (sagemaker).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="The AWS region (sagemaker).")] = None,
    base_image: Annotated[
        str | None, typer.Option("--base", envvar="SHIPYARD_BASE_IMAGE", help="The base of a bundle's image (local).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="The local container's workers.")] = None,
    registry: Annotated[str, typer.Option("--registry", help="The registry of a GROUP/VERSION source.")] = "local",
    allow_unapproved: Annotated[
        bool, typer.Option("--allow-unapproved", help="Transform with a GROUP/VERSION that is not Approved.")
    ] = False,
    env: Annotated[
        list[str], typer.Option("--env", "-e", help="KEY=VALUE for the container: the job's Environment (repeatable).")
    ] = [],  # noqa: B006 (typer's way of a repeatable option; never mutated)
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout (docs/schemas/transform.v1.json).")
    ] = False,
) -> None:
    """Run a batch transform: every input file's records through the model, answers in <input>.out.

    SageMaker's semantics on both targets: the container's /execution-parameters, records split by line and
    packed up to the payload limit, DataProcessing's JSONPath filters and join, a failed request failing its
    file (the others still written), and the job's cost.
    """
    from shipyard.cli.deploy import CliReporter, name_the_flag
    from shipyard.deploy.transform import TransformOptions
    from shipyard.errors import ShipyardError
    from shipyard.settings import Settings

    settings = Settings.from_env()
    reporter = CliReporter()
    try:
        resolved = _resolve(source, settings, registry, region, allow_unapproved)
        options = TransformOptions(
            resolved, input, output, target=target, split_type=split_type, strategy=strategy,
            max_payload_mb=max_payload_mb, max_concurrent=max_concurrent, join_source=join_source,
            input_filter=input_filter, output_filter=output_filter, assemble_with=assemble_with,
            content_type=content_type, accept=accept, instance_type=instance_type, instance_count=instance_count,
            job_name=job_name, image=image, role_arn=role_arn, region=region, base_image=base_image,
            workers=workers, environment=_environment(env),
        )  # fmt: skip
    except ShipyardError as exc:
        name_the_flag(exc, FLAGS)
        raise
    if options.target == "sagemaker":
        _sagemaker(options, settings, reporter, json_output)
        return
    from shipyard.deploy.transform.cost import estimate
    from shipyard.deploy.transform.local import run_local

    with _RichProgress(quiet=json_output) as progress:
        result = run_local(options, settings=settings, reporter=reporter, progress=progress)
    reporter.done()
    cost = estimate(options.instance_type, options.instance_count, result.seconds)
    if json_output:
        _print_json(options, result, cost.usd, cost.described())
    else:
        _print_local(result, cost.described(), options.instance_type)
    if result.failed:
        raise typer.Exit(3)


def _environment(pairs: list[str]) -> dict[str, str]:
    from shipyard.errors import UsageError

    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {pair!r}: give KEY=VALUE")
        found[key] = value
    return found


def _resolve(source: str, settings: Any, backend: str, region: str | None, allow_unapproved: bool) -> str:
    """A GROUP/VERSION to its model archive, ``run:NAME`` to the run's bundle (the registry and the runs live
    above the workflows: resolved here, as deploy resolves them)."""
    if Path(source).exists() or "://" in source or not (source.startswith("run:") or "/" in source):
        return source
    from shipyard.registry import open_registry, resolve_source

    registry = open_registry(backend, settings, region=region)
    return resolve_source(source, settings=settings, registry=registry, allow_unapproved=allow_unapproved).source


class _RichProgress:
    """Bytes and records done, on stderr (the transform's Progress)."""

    def __init__(self, *, quiet: bool) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[records]:,} records"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet or not err.is_terminal,
            transient=True,
        )
        self._task: Any = None
        self._records = 0

    def __enter__(self) -> _RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def begin(self, files: int, total_bytes: int) -> None:
        self._task = self._bar.add_task(f"{files} file(s)", total=total_bytes, records=0)

    def advance(self, bytes_done: int, records: int) -> None:
        self._records += records
        self._bar.update(self._task, advance=bytes_done, records=self._records)

    def file_done(self, result: FileResult) -> None:
        if result.failure is not None:
            f = result.failure
            last = f.first_record + max(f.records, 1) - 1
            where = f"record {f.first_record}" if last == f.first_record else f"records {f.first_record}–{last}"
            err.print(f"[red]✗[/] {escape(result.input)}: {where}: {escape(f.message)}", highlight=False)
        elif self._bar.disable:
            err.print(f"[green]✓[/] {escape(result.input)}: {result.records:,} records", highlight=False)


def _print_local(result: TransformResult, cost: str, instance_type: str) -> None:
    from rich.table import Table

    table = Table(title=f"{result.records:,} records in {result.seconds:.1f} s", title_justify="left")
    for column in ("input", "output", "records", "requests", "failure"):
        table.add_column(column)
    for f in result.files:
        failure = f"record {f.failure.first_record}: {f.failure.message}" if f.failure else ""
        table.add_row(f.input, f.output or "—", f"{f.records:,}", str(f.requests), failure)
    out.print(table)
    rate = result.records / result.seconds if result.seconds else 0.0
    s = result.settings
    out.print(
        f"{rate:,.0f} records/s; {s.strategy}, {s.max_payload_mb} MB, {s.max_concurrent} at a time. "
        f"On sagemaker at this speed: {cost}",
        highlight=False,
    )


def _print_json(options: Any, result: TransformResult, usd: float | None, cost: str) -> None:
    from shipyard.cli.output import print_json

    print_json(
        COMMAND,
        {
            "target": "local",
            "source": options.source,
            "input": options.input,
            "output": options.output,
            "job_name": None,
            "status": "Failed" if result.failed else "Completed",
            "settings": {
                "max_concurrent": result.settings.max_concurrent,
                "strategy": result.settings.strategy,
                "max_payload_mb": result.settings.max_payload_mb,
            },
            "records": result.records,
            "requests": result.requests,
            "seconds": result.seconds,
            "files": [
                {
                    "input": f.input,
                    "output": f.output,
                    "records": f.records,
                    "requests": f.requests,
                    "failure": None
                    if f.failure is None
                    else {
                        "first_record": f.failure.first_record,
                        "records": f.failure.records,
                        "status": f.failure.status,
                        "message": f.failure.message,
                    },
                }
                for f in result.files
            ],
            "cost_usd": usd,
            "cost": cost,
        },
    )


def _sagemaker(options: Any, settings: Any, reporter: Any, json_output: bool) -> None:
    from shipyard.deploy.transform.sagemaker import run_sagemaker

    job: JobResult = run_sagemaker(options, settings=settings, reporter=reporter)
    reporter.done()
    cost = job.cost.described() if job.cost else ""
    if json_output:
        from shipyard.cli.output import print_json

        print_json(
            COMMAND,
            {
                "target": "sagemaker",
                "source": options.source,
                "input": job.input_uri,
                "output": options.output,
                "job_name": job.job_name,
                "status": job.status,
                "settings": None,
                "records": None,
                "requests": None,
                "seconds": job.seconds,
                "files": [
                    {"input": None, "output": p, "records": None, "requests": None, "failure": None}
                    for p in job.downloaded
                ],
                "cost_usd": job.cost.usd if job.cost else None,
                "cost": cost,
            },
        )
        return
    out.print(f"{job.job_name}: {job.status}; output {job.output_uri}", highlight=False)
    for path in job.downloaded:
        out.print(f"  {path}", highlight=False)
    out.print(f"cost: {cost}", highlight=False)
    sys.stdout.flush()
