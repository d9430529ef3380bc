"""A training run's record as ``shipyard train`` writes it, for tests of what reads runs (register, deploy run:NAME)."""

from __future__ import annotations

from pathlib import Path

from shipyard.experiments.record import Channel, CodeVersion, MetricPoint, RunStore, TrainRun
from shipyard.settings import Settings

__all__ = ["DIGEST", "save_run"]

DIGEST = "sha256:" + "ab" * 32


def save_run(name: str, bundle: Path | None, **changes: object) -> TrainRun:
    """A completed local run's record as ``shipyard train`` writes it (RunStore.save)."""
    run = TrainRun(
        name=name,
        target="local",
        experiment="digits",
        entry="train.py",
        source_dir="/src/digits",
        status="Completed",
        hyperparameters={"epochs": "10", "lr": "0.1", "note": "a b=c {x}"},
        channels=[
            Channel("train", "/data/train", "sha256:" + "1" * 64, size=10, files=1),
            Channel("validation", "s3://bucket/val/", "etag:" + "2" * 32),
        ],
        metrics=[MetricPoint("accuracy", 0.91, 1), MetricPoint("accuracy", 0.95, 2), MetricPoint("loss", 0.2)],
        code=CodeVersion(commit="c0ffee" * 6 + "ab12", dirty=True, diff_sha256="d" * 64, source_sha256="e" * 64),
        image="localhost/shipyard-digits:1",
        image_digest=DIGEST,
        bundle_path=str(bundle) if bundle else None,
        model_artifact="/runs/x/model.tar.gz",
        is_bundle=bundle is not None,
        tracking_uri="sqlite:///tmp/mlflow.db",
        tracking_run_id="f" * 32,
    )
    for key, value in changes.items():
        setattr(run, key, value)
    RunStore(Settings.from_env()).save(run)
    return run
