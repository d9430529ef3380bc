"""MlflowTracker against MLflow's real SQLite store, read back with MLflow's own client."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest
from experiment_runs import Home, free_port, make_run, track
from mlflow import MlflowClient

from shipyard.errors import SettingsError
from shipyard.experiments import NO_TRACKING, MlflowTracker, tracker_for
from shipyard.experiments.record import MetricPoint, RunStore
from shipyard.experiments.store import client_for


def test_a_run_is_an_mlflow_run_with_its_params_tags_metrics_datasets_and_status(sy_home: Home) -> None:
    run = track(sy_home.settings, make_run("digits-c1", hp={"C": "1.0", "max_iter": "200", "target": "digit"}))
    assert run.tracking_uri == sy_home.settings.tracking
    assert run.tracking_run_id is not None
    assert RunStore(sy_home.settings).load("digits-c1").tracking_run_id == run.tracking_run_id  # in the record

    client = MlflowClient(tracking_uri=sy_home.settings.tracking)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    assert experiment.artifact_location == (sy_home.path / "mlartifacts").as_uri()  # not ./mlruns in the cwd
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_id == run.tracking_run_id
    assert found.info.run_name == "digits-c1"
    assert found.info.status == "FINISHED"
    assert found.info.start_time == int(run.started_at.timestamp() * 1000)  # type: ignore[union-attr]
    assert found.info.end_time == int(run.ended_at.timestamp() * 1000)  # type: ignore[union-attr]
    assert found.data.params == {
        "C": "1.0", "max_iter": "200", "target": "digit",  # a hyperparameter called target keeps its name
        "shipyard.instance_type": "ml.m5.large", "shipyard.instance_count": "1", "shipyard.target": "local",
        "shipyard.entry": "train.py",
    }  # fmt: skip
    tags = found.data.tags
    assert tags["mlflow.runName"] == "digits-c1"
    assert tags["mlflow.source.name"] == "train.py"
    assert tags["mlflow.source.git.commit"] == tags["shipyard.code.commit"] == run.code.commit  # type: ignore[union-attr]
    assert (tags["shipyard.code.dirty"], tags["shipyard.code.diff_sha256"]) == ("true", "d" * 64)
    assert tags["shipyard.code.source_sha256"] == "e" * 64
    assert tags["shipyard.data.train.uri"] == "/data/digits/train"
    assert tags["shipyard.data.train.version"] == "sha256:" + "1f" * 32
    assert tags["shipyard.data.validation.uri"] == "s3://bucket/digits/validation/"
    assert tags["shipyard.data.validation.version"] == "etag:" + "9a" * 16
    assert (tags["shipyard.image"], tags["shipyard.image_digest"]) == ("shipyard-train:digits", "sha256:" + "ab" * 32)
    assert (tags["shipyard.target"], tags["shipyard.status"]) == ("local", "Completed")
    assert (tags["shipyard.duration_s"], tags["shipyard.billable_seconds"]) == ("42.0", "42.0")
    assert tags["shipyard.cost_usd"] == "0.0013"
    assert tags["shipyard.model_artifact"] == "/runs/digits-c1/model.tar.gz"
    assert tags["shipyard.bundle_path"] == "/runs/digits-c1/bundle"
    assert "shipyard.failure_reason" not in tags

    history = client.get_metric_history(found.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert [m.timestamp for m in history] == [int((run.started_at.timestamp() + i) * 1000) for i in range(3)]  # type: ignore[union-attr]
    assert [(m.step, m.value) for m in client.get_metric_history(found.info.run_id, "accuracy")] == [(0, 0.9)]
    assert found.data.metrics == {"loss": 0.3, "accuracy": 0.9}

    inputs = {d.dataset.name: d for d in found.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation"}
    assert inputs["train"].dataset.digest == ("sha256:" + "1f" * 32)[:36]  # MLflow keeps 36 characters
    assert '"/data/digits/train"' in inputs["train"].dataset.source
    assert inputs["validation"].dataset.source_type == "s3"
    assert {t.key: t.value for t in inputs["validation"].tags} == {"mlflow.data.context": "validation"}


def test_mlflow_info_lines_are_kept_quiet(sy_home: Home) -> None:
    client_for(sy_home.settings.tracking)
    assert logging.getLogger("mlflow").getEffectiveLevel() >= logging.WARNING  # "Creating initial MLflow ..."
    assert logging.getLogger("mlflow.store.db.utils").getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize(("status", "mlflow_status"), [("Failed", "FAILED"), ("Stopped", "KILLED")])
def test_failed_and_stopped_runs_are_failed_and_killed(sy_home: Home, status: str, mlflow_status: str) -> None:
    run = track(sy_home.settings, make_run(f"digits-{status.lower()}", status=status))
    found = MlflowClient(tracking_uri=sy_home.settings.tracking).get_run(run.tracking_run_id or "")
    assert found.info.status == mlflow_status
    assert found.data.tags["shipyard.status"] == status
    assert found.data.tags.get("shipyard.failure_reason") == run.failure_reason
    if status == "Failed":
        assert found.data.tags["shipyard.failure_reason"] == "ValueError: C must be positive"


def test_metrics_without_steps_count_up_and_a_burst_arrives_whole(sy_home: Home) -> None:
    run = make_run("digits-burst", losses=())
    run.metrics = []
    tracker = MlflowTracker(sy_home.settings)
    tracker.start(run)
    begun = time.monotonic()
    for i in range(1500):  # more than one of MLflow's batches (1000 metrics)
        tracker.metric(run, MetricPoint("loss", 1.0 / (i + 1)))
    tracker.metric(run, MetricPoint("epoch_acc", 0.5, step=10))
    tracker.metric(run, MetricPoint("epoch_acc", 0.6))  # one past the previous step
    assert time.monotonic() - begun < 2.0  # the calls never wait for the store
    run.status = "Completed"
    tracker.finish(run)
    client = MlflowClient(tracking_uri=sy_home.settings.tracking)
    history = client.get_metric_history(run.tracking_run_id or "", "loss")
    assert sorted(m.step for m in history) == list(range(1500))
    assert [(m.step, m.value) for m in client.get_metric_history(run.tracking_run_id or "", "epoch_acc")] == [
        (10, 0.5), (11, 0.6)]  # fmt: skip


def test_a_resumed_run_goes_on_in_the_same_mlflow_run(sy_home: Home) -> None:
    first = track(sy_home.settings, make_run("digits-resume", status="Stopped"))
    again = make_run("digits-resume", losses=(0.2,))
    again.tracking_uri, again.tracking_run_id = first.tracking_uri, first.tracking_run_id
    track(sy_home.settings, again)
    client = MlflowClient(tracking_uri=sy_home.settings.tracking)
    assert len(client.search_runs([client.get_experiment_by_name("digits").experiment_id])) == 1  # type: ignore[union-attr]
    found = client.get_run(first.tracking_run_id or "")
    assert (found.info.status, found.data.tags["shipyard.status"]) == ("FINISHED", "Completed")


def test_a_dead_tracking_server_warns_once_and_the_run_record_is_whole(sy_home: Home) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = sy_home.settings.with_(tracking_uri=dead)
    warnings: list[str] = []
    begun = time.monotonic()
    run = track(settings, make_run("digits-offline"), warnings)
    assert time.monotonic() - begun < 15  # not MLflow's minutes of retries
    assert len(warnings) == 1, warnings
    assert dead in warnings[0] and "the run goes on" in warnings[0] and str(settings.runs_dir) in warnings[0]
    saved = RunStore(settings).load("digits-offline")
    assert saved.status == "Completed" and saved.tracking_run_id is None and saved.tracking_uri == dead
    assert saved.final_metrics == {"loss": 0.3, "accuracy": 0.9}
    assert saved.hyperparameters == run.hyperparameters and saved.channels == run.channels


def test_a_sagemaker_arn_without_the_plugin_is_refused_before_the_run(sy_home: Home) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"
    with pytest.raises(SettingsError) as caught:
        tracker_for(sy_home.settings.with_(tracking_uri=arn))
    assert "pip install sagemaker-mlflow" in str(caught.value) and arn in str(caught.value)
    assert caught.value.setting == "MLFLOW_TRACKING_URI"  # type: ignore[attr-defined]
    with pytest.raises(SettingsError, match="not a SageMaker MLflow tracking server"):
        tracker_for(sy_home.settings.with_(tracking_uri="arn:aws:s3:::bucket"))


def test_tracker_for_is_mlflow_when_installed_and_none_when_mlflow_cannot_be_imported(sy_home: Home) -> None:
    assert isinstance(tracker_for(sy_home.settings), MlflowTracker)
    code = (
        "import sys; sys.modules['mlflow'] = None\n"  # `import mlflow` now raises ImportError
        "from shipyard.experiments import NO_TRACKING, tracker_for\n"
        "from shipyard.settings import Settings\n"
        "try:\n    import mlflow\nexcept ImportError:\n    print('blocked')\n"
        "print(tracker_for(Settings.from_env()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["blocked", "None"]
    assert "pip install 'shipyard[track]'" in NO_TRACKING
