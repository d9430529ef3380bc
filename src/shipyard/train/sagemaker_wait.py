"""Waiting for a SageMaker training job: its status as phases, its CloudWatch log as it grows, metrics from both.

Each poll reads DescribeTrainingJob (a new ``SecondaryStatus`` is a phase: Starting, Downloading, Training,
Uploading, ...) and the lines the job's log streams gained since the last poll (``JobLogs``). Every line goes
to the listener and through the metric parser: every ``[metric] NAME=VALUE`` line and each ``--metric`` regex.
When the job ends, ``FinalMetricDataList`` adds what the log did not show (a metric whose lines were not read).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shipyard.cloud.logs import LogEvent
from shipyard.cloud.training import JobLogs, TrainingGateway
from shipyard.errors import TrainError
from shipyard.experiments.record import MetricPoint, TrainRun
from shipyard.train.api import TrainContext
from shipyard.training.metrics import MetricParser

__all__ = ["ENDED", "Waiter", "utc"]

ENDED = ("Completed", "Failed", "Stopped")
TAIL_LINES = 50


@dataclass
class Waiter:
    """One job's wait: the record, the gateways, and what has been read so far."""

    ctx: TrainContext
    run: TrainRun
    jobs: TrainingGateway
    logs: JobLogs
    parser: MetricParser
    poll_s: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    seen_status: str | None = None

    def until_ended(self) -> dict[str, Any]:
        """Poll until the job is Completed, Failed or Stopped; its last description (logs read to the end)."""
        while True:
            job = self.poll()
            if job["TrainingJobStatus"] in ENDED:
                self.read_logs()  # the last lines land after the status changes
                return job
            self.sleep(self.poll_s)

    def poll(self) -> dict[str, Any]:
        job = self.jobs.describe(self.run.name)
        if job is None:
            raise TrainError(f"the training job {self.run.name} disappeared from {self.jobs.aws.region}")
        self._status(job)
        self.read_logs()
        return job

    def _status(self, job: dict[str, Any]) -> None:
        secondary = str(job.get("SecondaryStatus") or job["TrainingJobStatus"])
        if secondary != self.seen_status:
            self.seen_status = secondary
            message = _transition_message(job, secondary)
            self.ctx.phase(f"{secondary}: {message}" if message else secondary)
        if job.get("TrainingStartTime") and self.run.started_at is None:
            self.run.started_at = utc(job["TrainingStartTime"])

    def read_logs(self) -> None:
        for event in self.logs.read():
            self._line(event)

    def _line(self, event: LogEvent) -> None:
        self.tail.append(event.message)
        self.ctx.emit("log", event.message)
        for point in self.parser.feed(event.message):
            self.ctx.metric(self.run, _at(point, event.timestamp_ms / 1000))

    def final_metrics(self, job: dict[str, Any]) -> None:
        """The metrics SageMaker computed from the log that were never read here (FinalMetricDataList)."""
        seen = {point.name for point in self.run.metrics}
        for item in job.get("FinalMetricDataList") or []:
            name = str(item["MetricName"])
            if name in seen:
                continue
            stamp = item.get("Timestamp")
            when = utc(stamp).timestamp() if stamp is not None else time.time()
            self.ctx.metric(self.run, MetricPoint(name=name, value=float(item["Value"]), timestamp=when))


def _at(point: MetricPoint, timestamp: float) -> MetricPoint:
    """The point stamped with its log line's time (when the line was written, not when it was read)."""
    return MetricPoint(name=point.name, value=point.value, step=point.step, timestamp=timestamp)


def _transition_message(job: dict[str, Any], status: str) -> str:
    for item in reversed(job.get("SecondaryStatusTransitions") or []):
        if item.get("Status") == status:
            return str(item.get("StatusMessage") or "")
    return ""


def utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=0)
    return datetime.fromtimestamp(float(value), UTC).replace(microsecond=0)
