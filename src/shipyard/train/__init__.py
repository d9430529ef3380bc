"""Training runs: the SageMaker training contract, on the local target (the real container) and on SageMaker.

``TrainOptions`` (what to run, validated once) → ``train`` (runs it, records it) → ``TrainRun`` (the record, kept
by ``RunStore`` under ``HOME/runs``). A run that saved a Shipyard bundle deploys as ``run:NAME``.
"""

from shipyard.train.api import TrainContext, TrainEvent, train
from shipyard.train.options import TrainOptions
from shipyard.train.record import Channel, CodeVersion, MetricPoint, RunStore, Tracker, TrainRun

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
]
