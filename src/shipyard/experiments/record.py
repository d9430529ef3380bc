"""What a training run is: one :class:`TrainRun` record, kept by :class:`RunStore` in Shipyard's home.

Every run, local or SageMaker, is written to ``HOME/runs/NAME/run.json`` (atomically, mode 0600) when it starts,
as it changes status, and when it ends. A local run's folder also holds what the container saw and wrote
(``opt_ml/``: ``input/config``, ``model``, ``output``, ``checkpoints``) and its log; the model it produced is
``model.tar.gz`` beside them, and when the script saved a Shipyard bundle, the bundle itself (``bundle/``).
``shipyard deploy run:NAME`` and ``shipyard register run:NAME`` read the record to find the model.

The record is also what an experiment tracker (:class:`Tracker`) is told about: ``start`` once, ``metric`` for
each value parsed from the log as it arrives, ``finish`` once with the final status.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from shipyard.errors import SettingsError, UsageError
from shipyard.settings import Settings
from shipyard.training.metrics import MetricPoint  # the record's metric points are the parser's

__all__ = [
    "RUN_PREFIX",
    "STATUSES",
    "Channel",
    "CodeVersion",
    "MetricPoint",
    "RunStore",
    "Tracker",
    "TrainRun",
    "check_run_name",
]

RUN_PREFIX = "run:"  # `shipyard deploy run:NAME`, `shipyard register run:NAME`
# SageMaker's TrainingJobStatus values (DescribeTrainingJob); a local run takes the same ones.
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
# A training job's name: SageMaker's pattern, ≤ 63 characters. A run's name is its job's name.
_RUN_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True)
class Channel:
    """One input channel: where it came from and which version of the data it was (the training data version).

    ``version``: ``sha256:HEX`` over a local folder's or file's names and contents, or ``etag:…`` (a digest of the
    objects' ETags) for an S3 prefix. ``uri``: the absolute local path or the ``s3://`` URI the run read."""

    name: str
    uri: str
    version: str
    size: int = 0  # bytes
    files: int = 0
    content_type: str | None = None


@dataclass(frozen=True)
class CodeVersion:
    """Which code trained: the git commit (None outside a repository), whether the tree had uncommitted changes
    (and a hash of them), and a hash of the source folder's files as they were sent."""

    commit: str | None
    dirty: bool
    diff_sha256: str | None
    source_sha256: str


@dataclass
class TrainRun:
    """One training run, local or SageMaker. Times are UTC; durations and costs are None until known."""

    name: str
    target: str  # local | sagemaker
    experiment: str
    entry: str  # the script, relative to the source folder
    source_dir: str
    status: str = "InProgress"
    hyperparameters: dict[str, str] = field(default_factory=dict)  # as hyperparameters.json holds them (strings)
    channels: list[Channel] = field(default_factory=list)
    metric_definitions: dict[str, str] = field(default_factory=dict)  # name -> regex
    metrics: list[MetricPoint] = field(default_factory=list)  # every value, in the order read
    code: CodeVersion | None = None
    image: str | None = None  # the image reference it ran (by digest on SageMaker)
    image_digest: str | None = None
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    spot: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    started_at: datetime | None = None
    ended_at: datetime | None = None
    training_seconds: float | None = None  # the script's own run time (reported by the container's `train`)
    billable_seconds: float | None = None
    spot_saving_pct: float | None = None
    cost_usd: float | None = None
    failure_reason: str | None = None
    log_tail: list[str] = field(default_factory=list)
    model_artifact: str | None = None  # model.tar.gz: a local path or an s3:// URI
    bundle_path: str | None = None  # the unpacked Shipyard bundle (local path), when the run produced one
    is_bundle: bool = False  # the model folder held a Shipyard bundle (shipyard.save); else it was wrapped
    output_data: str | None = None  # output.tar.gz (/opt/ml/output/data): a local path or an s3:// URI
    checkpoints: str | None = None  # a local folder or an s3:// URI
    job_arn: str | None = None  # SageMaker's TrainingJobArn
    region: str | None = None
    tracking_uri: str | None = None  # the experiment store the run was recorded in
    tracking_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # target-specific facts (role, output prefix, ...)

    @property
    def final_metrics(self) -> dict[str, float]:
        """Each metric's last value."""
        return {point.name: point.value for point in self.metrics}

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None

    @property
    def finished(self) -> bool:
        return self.status in ("Completed", "Failed", "Stopped")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "started_at", "ended_at"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainRun:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("created_at", "started_at", "ended_at"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        values["channels"] = [Channel(**c) for c in values.get("channels") or []]
        values["metrics"] = [MetricPoint(**m) for m in values.get("metrics") or []]
        if values.get("code"):
            values["code"] = CodeVersion(**values["code"])
        return cls(**values)


class Tracker(Protocol):
    """Told about a run as it happens (an experiment store: ``shipyard.experiments.MlflowTracker``)."""

    def start(self, run: TrainRun) -> None: ...

    def metric(self, run: TrainRun, point: MetricPoint) -> None: ...

    def finish(self, run: TrainRun) -> None: ...


def check_run_name(name: str) -> str:
    """A run name SageMaker accepts as a training job's name (≤ 63 letters, digits and inner hyphens)."""
    if not _RUN_NAME.match(name or ""):
        raise UsageError(
            f"run name {name!r} is not a valid training job name: up to 63 letters, digits and hyphens, starting "
            "and ending with a letter or digit (SageMaker's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$)"
        )
    return name


class RunStore:
    """The runs recorded under ``settings.runs_dir`` (``HOME/runs``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.root = (settings or Settings.from_env()).runs_dir

    def folder(self, name: str) -> Path:
        """The run's own folder (made on first use)."""
        path = self.root / check_run_name(name)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def exists(self, name: str) -> bool:
        return (self.root / name / "run.json").is_file()

    def save(self, run: TrainRun) -> None:
        """Write the record (atomically: a reader never sees half of it)."""
        folder = self.folder(run.name)
        data = orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=".run-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, folder / "run.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, name: str) -> TrainRun:
        """The run called ``name`` (``run:`` prefix allowed); a UsageError naming the known runs when missing."""
        name = name.removeprefix(RUN_PREFIX)
        path = self.root / name / "run.json"
        if not path.is_file():
            known = ", ".join(run.name for run in self.all()[-5:]) or "none yet: run `shipyard train`"
            raise UsageError(f"no training run named {name!r} in {self.root} (recent runs: {known})")
        try:
            return TrainRun.from_json(orjson.loads(path.read_bytes()))
        except (orjson.JSONDecodeError, OSError, TypeError, ValueError, KeyError) as exc:
            raise SettingsError(f"the run record {path} cannot be read ({exc})", setting="SHIPYARD_HOME") from None

    def all(self) -> list[TrainRun]:
        """Every readable run, oldest first (an unreadable record is skipped, not fatal)."""
        runs = []
        for path in sorted(self.root.glob("*/run.json")) if self.root.is_dir() else []:
            with contextlib.suppress(orjson.JSONDecodeError, OSError, TypeError, ValueError, KeyError):
                runs.append(TrainRun.from_json(orjson.loads(path.read_bytes())))
        return sorted(runs, key=lambda run: run.created_at)

    def __iter__(self) -> Iterator[TrainRun]:
        return iter(self.all())
