"""Run records as train() writes them, built directly (no container), and a tracker told about them."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.experiments.record import Channel, CodeVersion, MetricPoint, RunStore, TrainRun
from shipyard.settings import Settings


@dataclass
class Home:
    path: Path
    settings: Settings

    @property
    def env(self) -> dict[str, str]:
        """The environment of a `shipyard` subprocess that uses this home (and its default tracking store)."""
        return {"SHIPYARD_HOME": str(self.path), "SHIPYARD_STATE": str(self.path / "state.json")}


def make_run(
    name: str,
    *,
    hp: dict[str, str] | None = None,
    losses: tuple[float, ...] = (0.9, 0.5, 0.3),
    accuracy: float = 0.9,
    status: str = "Completed",
    experiment: str = "digits",
    started: datetime | None = None,
) -> TrainRun:
    """A finished run's record, as train() would have written it (no container needed)."""
    begun = started or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    run = TrainRun(
        name=name, target="local", experiment=experiment, entry="train.py", source_dir="/work/digits",
        hyperparameters=hp or {"C": "1.0", "max_iter": "200"},
        channels=[Channel("train", "/data/digits/train", "sha256:" + "1f" * 32, size=1234, files=2),
                  Channel("validation", "s3://bucket/digits/validation/", "etag:" + "9a" * 16)],
        code=CodeVersion("0123456789abcdef0123456789abcdef01234567", True, "d" * 64, "e" * 64),
        image="shipyard-train:digits", image_digest="sha256:" + "ab" * 32,
        instance_type="ml.m5.large", instance_count=1, started_at=begun,
    )  # fmt: skip
    for step, loss in enumerate(losses):
        run.metrics.append(MetricPoint("loss", loss, step, begun.timestamp() + step))
    run.metrics.append(MetricPoint("accuracy", accuracy, None, begun.timestamp() + len(losses)))
    run.status = status
    run.ended_at = begun + timedelta(seconds=42)
    run.training_seconds, run.billable_seconds, run.cost_usd = 40.0, 42.0, 0.0013
    if status == "Failed":
        run.failure_reason = "ValueError: C must be positive"
    run.model_artifact = f"/runs/{name}/model.tar.gz"
    run.bundle_path = f"/runs/{name}/bundle"
    return run


def track(settings: Settings, run: TrainRun, warnings: list[str] | None = None) -> TrainRun:
    """Tell a tracker about ``run`` as train() does (start, each metric, finish) and save its record."""
    from shipyard.experiments import MlflowTracker
    from shipyard.experiments.sync import replay

    replay(MlflowTracker(settings, warn=(warnings.append if warnings is not None else None)), run)
    RunStore(settings).save(run)
    return run


def free_port() -> int:
    """A local port nothing listens on (a dead tracking server's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
