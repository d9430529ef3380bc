"""``shipyard train``: one training run, on ``local`` (the real container) or ``sagemaker`` (a training job).

Progress, the run's log and its metrics stream to stderr as they come; the summary (status, durations, final
metrics, the model and the bundle, how to deploy it) goes to stdout, or one JSON document with ``--output json``
(``shipyard.train/1``, docs/schemas/train.v1.json). Ctrl-C stops a local run (recorded ``Stopped``, exit 130); on
SageMaker it asks whether to stop the training job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

if TYPE_CHECKING:
    from shipyard.train import TrainEvent, TrainRun

__all__ = ["FLAGS", "register"]

out = Console()
err = Console(stderr=True)

# The option a SpecError names → its flag here.
FLAGS = {
    "entry": "SCRIPT",
    "source_dir": "--source-dir",
    "channels": "--data",
    "hyperparameters": "--hp",
    "target": "--target",
    "instance_type": "--instance-type",
    "instance_count": "--instance-count",
    "max_runtime": "--max-runtime",
    "max_wait": "--max-wait",
    "metrics": "--metric",
    "requirements": "--requirements",
    "name": "--name",
    "handler": "--handler",
    "checkpoints": "--checkpoints",
    "output": "--output-path",
    "role": "--role",
    "env": "--env",
}

Script = Annotated[Path, typer.Argument(help="The training script (inside --source-dir, default its folder).")]
SourceDir = Annotated[Path | None, typer.Option("--source-dir", help="The folder sent as the code (/opt/ml/code).")]
Data = Annotated[list[str], typer.Option("--data", "-d", help="NAME=PATH or NAME=s3://… (a channel; repeatable).")]
Hp = Annotated[list[str], typer.Option("--hp", help="NAME=VALUE (a hyperparameter; repeatable).")]
TargetOpt = Annotated[str, typer.Option("--target", help="local or sagemaker.")]
InstanceType = Annotated[str, typer.Option("--instance-type", help="sagemaker: the training instance type.")]
InstanceCount = Annotated[int, typer.Option("--instance-count", help="sagemaker: instances (local runs one).")]
Spot = Annotated[bool, typer.Option("--spot", help="sagemaker: managed spot training (with checkpoints).")]
MaxWait = Annotated[str | None, typer.Option("--max-wait", help="spot: the longest wait plus run, e.g. 2h.")]
MaxRuntime = Annotated[str | None, typer.Option("--max-runtime", help="Stop the run after this long, e.g. 1h.")]
Metric = Annotated[
    list[str], typer.Option("--metric", "-m", help="NAME (shipyard.log_metric's line) or NAME=REGEX; repeatable.")
]
Requirements = Annotated[
    Path | None,
    typer.Option("--requirements", help="The script's requirements.", show_default="SOURCE/requirements.txt"),
]
Name = Annotated[str | None, typer.Option("--name", "-n", help="The run's name.", show_default="EXPERIMENT-TIME")]
Experiment = Annotated[
    str | None,
    typer.Option("--experiment", help="The experiment to record it in.", show_default="the source folder's name"),
]
Handler = Annotated[Path | None, typer.Option("--handler", help="An inference.py to wrap a non-bundle model with.")]
Checkpoints = Annotated[
    str | None, typer.Option("--checkpoints", help="DIR or s3://… kept as /opt/ml/checkpoints (resume).")
]
OutputPath = Annotated[str | None, typer.Option("--output-path", help="sagemaker: s3://BUCKET/PREFIX for the output.")]
Role = Annotated[str | None, typer.Option("--role", help="sagemaker: an execution role ARN to use.")]
Base = Annotated[
    str | None,
    typer.Option("--base", envvar="SHIPYARD_BASE_IMAGE", help="The base image.", show_default="python:3.11-slim"),
]
Env = Annotated[list[str], typer.Option("--env", "-e", help="KEY=VALUE for the training container (repeatable).")]


def register(app: typer.Typer) -> None:
    """Add the command(s) to ``app``."""
    app.command("train")(train)


def train(
    script: Script,
    source_dir: SourceDir = None,
    data: Data = [],  # noqa: B006 (typer's way of a repeatable option; never mutated)
    hp: Hp = [],  # noqa: B006
    target: TargetOpt = "local",
    instance_type: InstanceType = "ml.m5.large",
    instance_count: InstanceCount = 1,
    spot: Spot = False,
    max_wait: MaxWait = None,
    max_runtime: MaxRuntime = None,
    metric: Metric = [],  # noqa: B006
    requirements: Requirements = None,
    name: Name = None,
    experiment: Experiment = None,
    handler: Handler = None,
    checkpoints: Checkpoints = None,
    output_path: OutputPath = None,
    role: Role = None,
    base: Base = None,
    env: Env = [],  # noqa: B006
    output: Output = OUTPUT_OPTION,
) -> None:
    """Train SCRIPT under SageMaker's training contract, locally (the real container) or as a SageMaker job."""
    from shipyard.cli.deploy import name_the_flag
    from shipyard.errors import ShipyardError
    from shipyard.train import TrainOptions

    fields = dict(target=target, instance_type=instance_type, instance_count=instance_count, spot=spot,
                  requirements=requirements, name=name, experiment=experiment, handler=handler,
                  checkpoints=checkpoints, output=output_path, role=role, base=base)  # fmt: skip
    try:
        options = TrainOptions.parse(
            script, source_dir=source_dir, data=data, hp=hp, metrics=metric, max_runtime=max_runtime,
            max_wait=max_wait, env=env, **fields,
        )  # fmt: skip
        run = _run(options)
    except ShipyardError as exc:
        _name_flag(exc, name_the_flag)
        _print_tail(exc)
        raise
    if output is Output.json:
        print_json("train", document(run))
        return
    _print_summary(run)


def _name_flag(exc: Exception, fallback: Any) -> None:
    option = getattr(exc, "option", None)
    if isinstance(option, str) and option in FLAGS and exc.args:
        exc.args = (f"{exc.args[0]} ({FLAGS[option]})", *exc.args[1:])
        return
    fallback(exc)


def _run(options: Any) -> TrainRun:
    from shipyard.experiments import NO_TRACKING, tracker_for
    from shipyard.settings import Settings
    from shipyard.train import train as run_training

    settings = Settings.from_env()
    tracker = tracker_for(settings, warn=lambda message: err.print(f"[yellow]warning:[/] {escape(message)}"))
    if tracker is None:
        err.print(f"[dim]· {escape(NO_TRACKING)}[/]", highlight=False)
    return run_training(
        options, settings=settings, tracker=tracker, track=False, on_event=_show, on_interrupt=_ask_to_stop
    )


def _show(event: TrainEvent) -> None:
    """One event on stderr: phases dimmed, log lines as they are, metrics highlighted."""
    if event.kind == "log":
        err.print(Text(event.text), highlight=False, soft_wrap=True)
    elif event.kind == "metric":
        err.print(f"[cyan]  metric[/] {escape(event.text)}", highlight=False)
    elif event.kind == "status":
        err.print(f"[bold]status[/] {escape(event.text)}", highlight=False)
    else:
        err.print(f"[dim]· {escape(event.text)}[/]", highlight=False, soft_wrap=True)


def _ask_to_stop(run: TrainRun) -> bool:
    """Ctrl-C during a SageMaker job: stop it (StopTrainingJob), or leave it running."""
    return typer.confirm(f"\nstop the SageMaker training job {run.name} (StopTrainingJob)?", default=True, err=True)


def _print_tail(exc: Exception) -> None:
    tail = getattr(exc, "log_tail", ())
    if tail:
        err.print("[bold]last log lines of the run:[/]")
        for line in tail[-20:]:
            err.print(Text(f"  {line}"), highlight=False, soft_wrap=True)


def document(run: TrainRun) -> dict[str, Any]:
    """The ``--output json`` document: the run's record, its final metrics and duration."""
    return {
        "run": run.to_json(),
        "final_metrics": run.final_metrics,
        "duration_s": run.duration_s,
        "deploy": f"shipyard deploy run:{run.name}" if run.bundle_path or run.target == "sagemaker" else None,
    }


def _print_summary(run: TrainRun) -> None:
    table = Table(show_header=False, box=None, pad_edge=False, title=escape(f"training run {run.name}"))
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    seconds = f"{run.training_seconds:.1f} s" if run.training_seconds is not None else "–"
    rows = {
        "status": run.status,
        "target": f"{run.target} ({run.instance_type})" if run.target == "sagemaker" else run.target,
        "duration": f"{run.duration_s:.1f} s" if run.duration_s is not None else "–",
        "script's own time": seconds,
        "metrics": ", ".join(f"{k}={v:g}" for k, v in run.final_metrics.items()) or "–",
        "model artifact": run.model_artifact or "–",
        "bundle": run.bundle_path or str(run.extra.get("note") or "–"),
        "image": run.image or "–",
    }
    if run.cost_usd is not None:
        rows["cost"] = f"${run.cost_usd:.4f}"
    for key, value in rows.items():
        table.add_row(key, Text(str(value)))
    out.print(table)
    if run.bundle_path or run.target == "sagemaker":
        out.print(f"deploy it: shipyard deploy run:{run.name} --name NAME", highlight=False, markup=False)
