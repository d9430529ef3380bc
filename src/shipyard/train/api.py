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

from collections.abc import Callable
from dataclasses import dataclass, field

from shipyard.settings import Settings
from shipyard.train.options import TrainOptions
from shipyard.train.record import MetricPoint, RunStore, Tracker, TrainRun

__all__ = ["TrainContext", "TrainEvent", "train"]


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
) -> TrainRun:
    """Run ``options`` on its target; the finished run's record. A failed run raises
    :class:`~shipyard.errors.TrainFailed` and a stopped one :class:`~shipyard.errors.TrainStopped`, after the
    record (status, reason, log tail) is saved and the tracker told."""
    raise NotImplementedError("filled in by the training work (train/local.py, train/sagemaker.py)")
