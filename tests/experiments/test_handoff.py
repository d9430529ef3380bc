"""A short run is written to MLflow by a child process after it ends; a long one is tracked live. Both end up
holding the same params, metrics and status (MLflow's real SQLite store), and a listing right after a short run
waits for its child."""

from __future__ import annotations

import time

from experiment_runs import Home, make_run
from mlflow import MlflowClient

from shipyard.experiments import list_runs, show_run
from shipyard.experiments.record import RunStore, TrainRun
from shipyard.experiments.sync import PENDING
from shipyard.experiments.tracking import MlflowTracker


def _tell(tracker: MlflowTracker, run_name: str, home: Home, pause_s: float = 0.0) -> tuple[TrainRun, float]:
    run = make_run(run_name, losses=(0.9, 0.4, 0.2))
    points, run.metrics = list(run.metrics), []
    tracker.start(run)
    time.sleep(pause_s)
    for point in points:
        run.metrics.append(point)
        tracker.metric(run, point)
    began = time.monotonic()
    tracker.finish(run)
    RunStore(home.settings).save(run)
    return run, time.monotonic() - began


def test_a_short_run_is_handed_to_a_child_and_a_listing_waits_for_it(sy_home: Home) -> None:
    tracker = MlflowTracker(sy_home.settings, live_after_s=30.0)
    run, finish_s = _tell(tracker, "digits-short", sy_home)
    assert finish_s < 1.0  # no waiting for MLflow in the command
    assert tracker._thread is None  # never went live
    listing = list_runs(sy_home.settings, experiment="digits", source="mlflow")  # waits for the child
    assert not (sy_home.settings.runs_dir / "digits-short" / PENDING).exists()
    [found] = listing.runs
    assert found.name == "digits-short" and found.status == "Completed"
    assert found.hyperparameters == run.hyperparameters
    detail = show_run(sy_home.settings, "digits-short", source="mlflow")
    assert [(p.step, p.value) for p in detail.series["loss"]] == [(0, 0.9), (1, 0.4), (2, 0.2)]
    record = RunStore(sy_home.settings).load("digits-short")
    assert record.tracking_run_id  # the child noted the MLflow run in the record
    got = MlflowClient(tracking_uri=sy_home.settings.tracking).get_run(record.tracking_run_id)
    assert got.info.status == "FINISHED"


def test_a_run_longer_than_live_after_is_tracked_live(sy_home: Home) -> None:
    tracker = MlflowTracker(sy_home.settings, live_after_s=0.2)
    run, _ = _tell(tracker, "digits-long", sy_home, pause_s=0.6)
    assert not (sy_home.settings.runs_dir / "digits-long" / PENDING).exists()  # no child: done in process
    assert run.tracking_run_id
    history = MlflowClient(tracking_uri=sy_home.settings.tracking).get_metric_history(run.tracking_run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.4), (2, 0.2)]
