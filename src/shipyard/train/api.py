"""``train``: one run, local or SageMaker, recorded as it goes.

    >>> from shipyard.train import TrainOptions, train
    >>> run = train(TrainOptions.parse("examples/digits/train_job.py", hp={"C": 1.0}))   # doctest: +SKIP
    >>> run.status, run.final_metrics                                                    # doctest: +SKIP
    ('Completed', {'accuracy': 0.97})

What both targets share happens here: the run's record (name, code version, data versions) is made and saved
before anything runs, the tracker is told at start, at each metric and at the end, and the record is saved again
at each change of status. The target (``train.local`` or ``train.sagemaker``) runs the container or the job.
Progress goes to ``on_event``; nothing is printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shipyard.errors import TrainStopped, UsageError
from shipyard.experiments import tracker_for
from shipyard.experiments.record import MetricPoint, RunStore, Tracker, TrainRun, check_run_name
from shipyard.image.build import DEFAULT_BASE
from shipyard.settings import Settings
from shipyard.train.options import TrainOptions
from shipyard.train.versions import channel_versions, code_version
from shipyard.training.contract import encode_hyperparameters
from shipyard.training.metrics import default_regex

__all__ = ["TrainContext", "TrainEvent", "build_image", "new_run", "train"]


@dataclass(frozen=True)
class TrainEvent:
    kind: str  # "phase" (what Shipyard does), "log" (a line of the run's log), "metric" (a value parsed from it),
    #            "status" (the run's status changed)
    text: str
    point: MetricPoint | None = None


@dataclass
class TrainContext:
    """What travels through a run: the settings, where runs are kept, who is told, and what Ctrl-C does.

    ``on_interrupt(run)``: asked after Ctrl-C; True stops the run (a local container is always stopped; a
    SageMaker job gets ``StopTrainingJob``), False leaves a SageMaker job running and returns."""

    settings: Settings
    store: RunStore
    tracker: Tracker | None = None
    on_event: Callable[[TrainEvent], None] | None = None
    on_interrupt: Callable[[TrainRun], bool] | None = None
    _finished: bool = field(default=False, init=False, repr=False)

    def emit(self, kind: str, text: str, point: MetricPoint | None = None) -> None:
        if self.on_event is not None:
            self.on_event(TrainEvent(kind, text, point))

    def phase(self, text: str) -> None:
        self.emit("phase", text)

    def metric(self, run: TrainRun, point: MetricPoint) -> None:
        """A value parsed from the log: into the record, to the tracker, to the listener."""
        run.metrics.append(point)
        if self.tracker is not None:
            self.tracker.metric(run, point)
        self.emit(
            "metric",
            f"{point.name}={point.value:g}" + (f" (step {point.step})" if point.step is not None else ""),
            point,
        )

    def status(self, run: TrainRun, status: str) -> None:
        run.status = status
        self.store.save(run)
        self.emit("status", status)


def train(
    options: TrainOptions,
    *,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    on_interrupt: Callable[[TrainRun], bool] | None = None,
    track: bool = True,
) -> TrainRun:
    """Run ``options`` on its target; the finished run's record. A failed run raises
    :class:`~shipyard.errors.TrainFailed` and a stopped one :class:`~shipyard.errors.TrainStopped`, after the
    record (status, reason, log tail) is saved and the tracker told. Without a ``tracker`` (and unless
    ``track=False``) the run is recorded in the experiment store of ``settings.tracking`` when MLflow is
    installed (:func:`shipyard.experiments.tracker_for`)."""
    settings = settings or Settings.from_env()
    if tracker is None and track:
        tracker = tracker_for(settings)
    ctx = TrainContext(settings, RunStore(settings), tracker, on_event, on_interrupt)
    run = new_run(options, ctx)
    try:
        if tracker is not None:
            tracker.start(run)
        image = build_image(options, run, ctx)
        if options.target == "sagemaker":
            from shipyard.train.sagemaker import run_sagemaker  # boto3 and the cloud only when asked for

            done: TrainRun = run_sagemaker(options, run, ctx, image)
            return done
        from shipyard.train.local import run_local

        return run_local(options, run, ctx, image)
    except BaseException as exc:
        if not run.finished:  # failed before the target could say: the record says why
            run.failure_reason = run.failure_reason or f"{type(exc).__name__}: {exc}"
            run.status = "Stopped" if isinstance(exc, KeyboardInterrupt | TrainStopped) else "Failed"
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C before the run started (while building)
            raise TrainStopped(f"training run {run.name} was stopped (Ctrl-C) before it started") from None
        raise
    finally:
        run.ended_at = run.ended_at or datetime.now(UTC).replace(microsecond=0)
        run.started_at = run.started_at or run.created_at
        if tracker is not None:
            tracker.finish(run)  # sets the tracking run's id: saved with the record below
        ctx.store.save(run)


def new_run(options: TrainOptions, ctx: TrainContext) -> TrainRun:
    """The run's record, saved: its name (refused when taken), the code and data versions."""
    name = options.name or f"{_slug(options.experiment_name)}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    check_run_name(name)
    if ctx.store.exists(name):
        raise UsageError(f"a training run named {name!r} exists already: pick another --name")
    ctx.phase("recording the code and data versions")
    run = TrainRun(
        name=name,
        target=options.target,
        experiment=options.experiment_name,
        entry=options.entry,
        source_dir=str(options.source_dir.resolve()),
        hyperparameters=encode_hyperparameters(options.hyperparameters),
        channels=channel_versions(options.channels, ctx.settings),
        metric_definitions={k: v or default_regex(k) for k, v in options.metric_definitions.items()},
        code=code_version(options.source_dir),
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        spot=options.spot,
        checkpoints=options.checkpoints,
        tracking_uri=ctx.settings.tracking,
    )
    ctx.store.save(run)
    return run


def build_image(options: TrainOptions, run: TrainRun, ctx: TrainContext) -> str:
    """Build the training image (ctx.phase for each step); its reference, recorded in the run."""
    from shipyard.bundle import parse_requirements
    from shipyard.image import BuildEvent, BuildOptions, build_training

    def report(event: BuildEvent) -> None:
        if event.kind in ("phase", "step"):
            ctx.phase(event.text)

    requirements = options.requirements_file
    result = build_training(
        options.source_dir,
        options.entry,
        BuildOptions(tag=f"shipyard-train/{_slug(options.experiment_name)}:latest", base=options.base or DEFAULT_BASE),
        report,
        requirements=parse_requirements(requirements.read_bytes()) if requirements else [],
        settings=ctx.settings,
    )
    run.image, run.image_digest = result.image, f"sha256:{result.image_id}"
    ctx.store.save(run)
    return result.image


def _slug(name: str) -> str:
    """A name fit for a run name's and an image tag's first part (letters, digits, hyphens)."""
    slug = "-".join(part for part in re.split(r"[^a-zA-Z0-9]+", name) if part).lower()
    return slug[:40].strip("-") or "run"
