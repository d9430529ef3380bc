"""Training runs: the SageMaker training contract, on the local target (the real container) and on SageMaker.

``TrainOptions`` (what to run, validated once) → ``train`` (runs it, records it) → ``TrainRun`` (the record, kept
by ``RunStore`` under ``HOME/runs``). A run that saved a Shipyard bundle deploys as ``run:NAME``.

    >>> run = shipyard.train("train.py", data={"train": "data/"}, hp={"C": 0.5})    # doctest: +SKIP
    >>> run.status, run.final_metrics, run.bundle_path                              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.experiments.record import Channel, CodeVersion, MetricPoint, RunStore, Tracker, TrainRun
from shipyard.settings import Settings
from shipyard.train.api import TrainContext, TrainEvent, train
from shipyard.train.options import TrainOptions

__all__ = [
    "Channel",
    "CodeVersion",
    "MetricPoint",
    "RunStore",
    "Tracker",
    "TrainContext",
    "TrainEvent",
    "TrainOptions",
    "TrainRun",
    "train",
    "train_script",
]


def train_script(
    script: str | Path,
    *,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    track: bool = True,
    **options: Any,
) -> TrainRun:
    """Train ``script`` with ``options`` in the forms :meth:`TrainOptions.parse` takes (``data={"train": "d/"}``,
    ``hp={"C": 0.5}``, ``metrics=["accuracy"]``, ``target="sagemaker"``, ``max_runtime="1h"``, ...): what
    ``shipyard train`` does, as a function. Returns the record; raises TrainFailed / TrainStopped."""
    return train(
        TrainOptions.parse(script, **options), settings=settings, tracker=tracker, on_event=on_event, track=track
    )


class _CallableModule(types.ModuleType):
    """``shipyard.train`` is this package *and* the function: ``shipyard.train("train.py", data=...)``."""

    def __call__(self, script: str | Path, **options: Any) -> TrainRun:
        return train_script(script, **options)


sys.modules[__name__].__class__ = _CallableModule
