"""``shipyard runs``: two runs compared from MLflow's real store and from the run records, the JSON document
validated against its committed schema, the PNG of a metric, one run in full, and the records alone when
``import mlflow`` fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from experiment_runs import Home, free_port, make_run, track

from infra.cli import shipyard
from shipyard.errors import SettingsError, SpecError
from shipyard.experiments import compare, list_runs, show_run
from shipyard.experiments.plot import metric_figure, plot_metric
from shipyard.experiments.record import RunStore
from shipyard.experiments.runs import metric_series

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def valid(text: str, schema: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)  # all of stdout, nothing before or after
    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))
    return document


@pytest.fixture
def two_runs(sy_home: Home) -> Home:
    """C=0.1 (accuracy 0.91) started first, C=10 (accuracy 0.96) an hour later; max_iter the same in both."""
    first, second = datetime(2026, 12, 1, 11, 0, tzinfo=UTC), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    track(sy_home.settings, make_run("digits-c01", hp={"C": "0.1", "max_iter": "200"}, accuracy=0.91,
                                     losses=(0.9, 0.6, 0.4), started=first))  # fmt: skip
    track(sy_home.settings, make_run("digits-c10", hp={"C": "10", "max_iter": "200"}, accuracy=0.96,
                                     losses=(0.8, 0.3, 0.1, 0.05), started=second))  # fmt: skip
    return sy_home


@pytest.mark.integration  # the console script in subprocesses
def test_two_runs_compared_from_mlflow_as_a_table_and_as_json(two_runs: Home) -> None:
    done = shipyard("runs", "--output", "json", env=two_runs.env, drop=("MLFLOW_",))
    assert done.returncode == 0, done.stderr
    document = valid(done.stdout, "runs.v1.json")
    assert (document["schema"], document["source"]) == ("shipyard.runs/1", "mlflow")
    assert document["location"] == two_runs.settings.tracking
    assert [r["name"] for r in document["runs"]] == ["digits-c10", "digits-c01"]  # newest first
    assert document["differing_hyperparameters"] == ["C"]
    assert document["same_hyperparameters"] == {"max_iter": "200"}
    newest = document["runs"][0]
    assert newest["hyperparameters"] == {"C": "10", "max_iter": "200"}
    assert newest["metrics"] == {"loss": 0.05, "accuracy": 0.96}
    assert (newest["status"], newest["target"], newest["duration_s"], newest["cost_usd"]) == (
        "Completed", "local", 42.0, 0.0013)  # fmt: skip
    assert newest["data_versions"] == {"train": "sha256:" + "1f" * 32, "validation": "etag:" + "9a" * 16}
    assert newest["code_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert newest["tracking_run_id"] == RunStore(two_runs.settings).load("digits-c10").tracking_run_id

    table = shipyard("runs", "--sort", "accuracy", env={**two_runs.env, "COLUMNS": "200"}, drop=("MLFLOW_",))
    assert table.returncode == 0, table.stderr
    assert "runs from MLflow" in table.stdout
    header = next(line for line in table.stdout.splitlines() if "name" in line and "status" in line)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert columns == ["name", "status", "target", "started", "duration", "C", "loss", "accuracy", "$ cost"]
    assert "max_iter" not in header and "same in every run: max_iter=200" in table.stdout
    rows = [line for line in table.stdout.splitlines() if "digits-c" in line]
    assert [row.split()[1] for row in rows] == ["digits-c10", "digits-c01"]  # accuracy, highest first
    assert "0.96" in rows[0] and "42.0s" in rows[0]


def test_sort_by_a_metric_and_the_same_document_from_the_run_records(two_runs: Home) -> None:
    lowest_loss_last = list_runs(two_runs.settings, sort="loss")
    assert [r.name for r in lowest_loss_last.runs] == ["digits-c01", "digits-c10"]  # loss 0.4 then 0.05
    from_mlflow = list_runs(two_runs.settings, source="mlflow")
    from_records = list_runs(two_runs.settings, source="local")
    assert (from_mlflow.source, from_records.source) == ("mlflow", "local")
    assert [r.to_json() for r in from_mlflow.runs] == [r.to_json() for r in from_records.runs]
    assert from_mlflow.comparison == from_records.comparison == compare(from_records.runs)
    with pytest.raises(Exception, match="sort 'f1' is not a metric of the listed runs"):
        list_runs(two_runs.settings, sort="f1")


@pytest.mark.integration  # the console script in subprocesses
def test_the_plot_draws_each_runs_series_and_writes_a_png(two_runs: Home, tmp_path: Path) -> None:
    listing = list_runs(two_runs.settings)
    series = metric_series(two_runs.settings, listing, "loss")
    figure = metric_figure(series, "loss")
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in figure.axes[0].lines}
    assert lines == {"digits-c10": ([0, 1, 2, 3], [0.8, 0.3, 0.1, 0.05]), "digits-c01": ([0, 1, 2], [0.9, 0.6, 0.4])}
    assert figure.axes[0].get_ylabel() == "loss"
    drawn = plot_metric(series, "loss", tmp_path / "direct.png")
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    png = tmp_path / "plots" / "loss.png"
    done = shipyard("runs", "--metric", "loss", "--plot", str(png), "--output", "json", env=two_runs.env,
                    drop=("MLFLOW_",))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert valid(done.stdout, "runs.v1.json")["plot"] == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a drawn chart, not an empty canvas
    ambiguous = shipyard("runs", "--plot", str(tmp_path / "x.png"), env=two_runs.env, drop=("MLFLOW_",))
    assert ambiguous.returncode == 2
    said = " ".join(ambiguous.stderr.split())
    assert "--metric" in said and "loss, accuracy" in said


@pytest.mark.integration  # the console script in subprocesses
def test_one_run_in_full(two_runs: Home) -> None:
    detail = show_run(two_runs.settings, "run:digits-c10")
    assert [(p.step, p.value) for p in detail.series["loss"]] == [(0, 0.8), (1, 0.3), (2, 0.1), (3, 0.05)]
    assert detail.run.params["shipyard.instance_type"] == "ml.m5.large"
    local = show_run(two_runs.settings, "digits-c10", source="local")
    assert local.series == {k: v for k, v in detail.series.items()}
    assert local.run.params == detail.run.params

    done = shipyard("runs", "show", "digits-c10", "--output", "json", env=two_runs.env, drop=("MLFLOW_",))
    assert done.returncode == 0, done.stderr
    document = valid(done.stdout, "runs-show.v1.json")
    assert document["run"]["name"] == "digits-c10" and document["source"] == "mlflow"
    assert document["tags"]["mlflow.source.git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert [p["value"] for p in document["series"]["loss"]] == [0.8, 0.3, 0.1, 0.05]
    table = shipyard("runs", "digits-c10", env={**two_runs.env, "COLUMNS": "160"}, drop=("MLFLOW_",))
    assert table.returncode == 0, table.stderr
    assert "sha256:" + "1f" * 32 in table.stdout.replace("│", "").replace(" ", "").replace("\n", "")
    assert "shipyard.data.train.version" in table.stdout
    assert "loss" in table.stdout and "0.05" in table.stdout
    missing = shipyard("runs", "show", "nope", env=two_runs.env, drop=("MLFLOW_",))
    assert missing.returncode == 2 and "no run named 'nope'" in " ".join(missing.stderr.split())


def _cli_without_mlflow(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a Python where ``import mlflow`` raises ImportError (as where the extra is not installed)."""
    code = "import sys; sys.modules['mlflow'] = None\nfrom shipyard.cli import main\nsys.argv[0] = 'shipyard'\nmain()\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                          env={**env, **home.env}, timeout=120)  # fmt: skip


@pytest.mark.integration  # the console script in subprocesses
def test_the_run_records_alone_when_mlflow_cannot_be_imported(two_runs: Home) -> None:
    (two_runs.path / "mlflow.db").unlink()  # nothing MLflow wrote is read
    done = _cli_without_mlflow(two_runs, "runs", "--output", "json")
    assert done.returncode == 0, done.stderr
    document = valid(done.stdout, "runs.v1.json")
    assert document["source"] == "local" and document["location"] == str(two_runs.settings.runs_dir)
    assert "MLflow is not installed" in document["note"] and "MLflow is not installed" in done.stderr
    assert [r["name"] for r in document["runs"]] == ["digits-c10", "digits-c01"]
    assert document["differing_hyperparameters"] == ["C"]
    assert document["runs"][0]["metrics"] == {"loss": 0.05, "accuracy": 0.96}

    local = _cli_without_mlflow(two_runs, "runs", "--source", "local")
    assert local.returncode == 0, local.stderr
    assert "runs from run records" in local.stdout and "digits-c01" in local.stdout
    asked = _cli_without_mlflow(two_runs, "runs", "--source", "mlflow")
    assert asked.returncode == 2
    said = " ".join(asked.stderr.split())
    assert "--source" in said and "pip install 'shipyard[track]'" in said


@pytest.mark.integration  # the console script in subprocesses
def test_a_sagemaker_arn_without_the_plugin_names_it_on_the_command_line(sy_home: Home) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"
    done = shipyard("runs", "--source", "mlflow", env={**sy_home.env, "MLFLOW_TRACKING_URI": arn})
    assert done.returncode == 2
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "pip install sagemaker-mlflow" in said and "MLFLOW_TRACKING_URI" in said and arn in said


def test_one_experiment_at_a_time_and_a_dead_tracking_server_is_said(two_runs: Home) -> None:
    later = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    track(two_runs.settings, make_run("iris-1", experiment="iris", hp={"depth": "3"}, started=later))
    every = list_runs(two_runs.settings)
    assert {r.name for r in every.runs} == {"digits-c01", "digits-c10", "iris-1"}
    assert set(every.comparison.differing) == {"C", "max_iter", "depth"}  # missing in some runs: differs
    only = list_runs(two_runs.settings, experiment="iris")
    assert [r.name for r in only.runs] == ["iris-1"] and only.comparison.differing == ["depth"]
    for source in ("mlflow", "local"):
        with pytest.raises(SpecError, match=r"experiment 'mnist' .*experiments: (Default, )?digits, iris\)") as caught:
            list_runs(two_runs.settings, experiment="mnist", source=source)
        assert caught.value.option == "experiment"

    dead = two_runs.settings.with_(tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SettingsError, match=r"cannot be reached.*--source local"):
        list_runs(dead, source="mlflow")
    assert [r.name for r in list_runs(dead, source="local").runs][:1] == ["iris-1"]
