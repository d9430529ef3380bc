"""The local target with real Podman containers: the run's record, its mounts and files, the bundle it produced
served by the same image, failures, Ctrl-C, the stopping condition and a checkpoint resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import jsonschema
import orjson
import pytest

from infra.cli import shipyard
from infra.server import BIN
from shipyard.errors import TrainFailed
from shipyard.image import BuildResult
from shipyard.image.engine import detect
from shipyard.image.run import ContainerRun
from shipyard.settings import Settings
from shipyard.train import RunStore, TrainOptions, TrainRun, train
from shipyard.train.local import LABEL

pytestmark = pytest.mark.integration
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _no_training_containers() -> list[str]:
    done = subprocess.run(["podman", "ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.split()


def _layers(image: str) -> list[str]:
    command = ["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image.removeprefix("sha256:")]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    layers: list[str] = json.loads(done.stdout)
    return layers


def _train(jobs: Path, script: str, settings: Settings, base: str, **fields: object) -> TrainRun:
    options = TrainOptions.parse(jobs / script, base=base, **fields)  # type: ignore[arg-type]
    return train(options, settings=settings)


def test_digits_run_makes_a_bundle_the_same_image_serves(
    jobs: Path, digits_data: Path, training_image: BuildResult, settings: Settings, base_image: str
) -> None:
    run = _train(
        jobs, "train_job.py", settings, base_image, name="digits-1",
        data=[f"train={digits_data / 'train'}", f"validation={digits_data / 'validation'}"],
        hp={"C": 0.5, "max_iter": 500}, metrics=["accuracy", "error=validation error: ([0-9.]+)"],
    )  # fmt: skip
    assert run.status == "Completed" and run.is_bundle
    # Unchanged code and requirements: the session image's layers, none rebuilt (only the build-time labels differ).
    assert _layers(run.image_digest or "") == _layers(training_image.image_id)
    finals = run.final_metrics
    assert 0.9 < finals["accuracy"] <= 1.0 and finals["train_accuracy"] >= finals["accuracy"]
    assert finals["error"] == pytest.approx(1 - finals["accuracy"], abs=1e-4)  # the user regex
    assert run.training_seconds is not None and 0 < run.training_seconds < (run.duration_s or 0) + 1
    assert [c.name for c in run.channels] == ["train", "validation"]
    assert all(c.version.startswith("sha256:") and c.files == 1 for c in run.channels)
    assert run.code is not None and len(run.code.source_sha256) == 64
    stored = RunStore(settings).load("run:digits-1")
    assert stored.status == "Completed" and stored.bundle_path == run.bundle_path
    with tarfile.open(run.model_artifact or "") as tar:
        assert "shipyard.toml" in tar.getnames() and not any(n.startswith("/") for n in tar.getnames())
    # One image trains and serves: `serve` with the run's bundle at /opt/ml/model.
    rows = orjson.loads((Path(run.bundle_path or "") / "example.json").read_bytes())["instances"]
    engine = detect("podman", settings)
    with ContainerRun(engine, run.image or "", name="shipyard-test-train-serve",
                      mounts={run.bundle_path or "": "/opt/ml/model"}) as server:  # fmt: skip
        server.start()
        assert server.wait_ready(60).ready, server.logs()
        answer = httpx.post(f"{server.url}/invocations", json={"instances": rows}, timeout=30)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == len(rows)
    assert _no_training_containers() == []


def test_the_contract_inside_the_container(
    jobs: Path, digits_data: Path, training_image: BuildResult, settings: Settings, base_image: str, tmp_path: Path
) -> None:
    single = tmp_path / "one.csv"
    single.write_text("1,2\n3,4\n")
    run = _train(
        jobs, "contract_job.py", settings, base_image, name="contract-1", handler=jobs / "inference.py",
        data=[f"train={digits_data / 'train'}", f"extra={single}"], env=["MY_SETTING=on"],
        hp={"epochs": 10, "lr": 0.1, "shuffle": True, "optimizer": "adam", "layers": "[64, 32]"},
    )  # fmt: skip
    facts = json.loads((Path(run.bundle_path or "") / "model.json").read_text())
    assert facts["argv"] == ["--epochs", "10", "--layers", "[64, 32]", "--lr", "0.1", "--optimizer", "adam",
                             "--shuffle", "True"]  # fmt: skip
    env = facts["env"]
    assert json.loads(env["SM_HPS"]) == {"epochs": 10, "lr": 0.1, "shuffle": True, "optimizer": "adam",
                                         "layers": [64, 32]}  # fmt: skip
    assert env["SM_MODEL_DIR"] == "/opt/ml/model" and env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert json.loads(env["SM_CHANNELS"]) == ["extra", "train"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert facts["channels"] == {"train": ["digits.npz"], "train:writable": False, "extra": ["one.csv"],
                                 "extra:writable": False}  # mounted read-only, a file inside its folder  # fmt: skip
    assert (facts["job"], facts["hostname"], facts["mine"]) == ("contract-1", "algo-1", "on")
    config = RunStore(settings).folder("contract-1") / "opt_ml" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text())["shuffle"] == "true"
    assert json.loads((config / "inputdataconfig.json").read_text())["extra"]["ContentType"] == "text/csv"
    assert not run.is_bundle and (Path(run.bundle_path or "") / "code" / "inference.py").is_file()  # wrapped
    assert [(p.name, p.value, p.step) for p in run.metrics] == [("loss", 0.5, 1), ("loss", 0.25, 2)]
    with tarfile.open(run.output_data or "") as tar:
        assert tar.getnames() == ["notes.txt"]


def test_failure_file_and_non_zero_exit(
    jobs: Path, training_image: BuildResult, settings: Settings, base_image: str
) -> None:
    with pytest.raises(TrainFailed) as failed:
        _train(jobs, "fail_file.py", settings, base_image, name="fails-1")
    assert failed.value.reason == "ValueError: the train channel has no rows"
    assert "giving up" in failed.value.log_tail
    record = RunStore(settings).load("fails-1")
    assert record.status == "Failed" and record.failure_reason == failed.value.reason and record.model_artifact is None

    with pytest.raises(TrainFailed) as crashed:
        _train(jobs, "crash.py", settings, base_image, name="crash-1")
    reason = crashed.value.reason or ""
    assert "exited with status 1" in reason and "RuntimeError: the loss is nan" in reason
    record = RunStore(settings).load("crash-1")
    assert record.status == "Failed" and "about to fail" in record.log_tail and record.ended_at is not None
    assert _no_training_containers() == []


def test_max_runtime_stops_the_run(
    jobs: Path, training_image: BuildResult, settings: Settings, base_image: str
) -> None:
    started = time.monotonic()
    with pytest.raises(TrainFailed) as failed:
        _train(jobs, "slow.py", settings, base_image, name="slow-1", max_runtime="3s")
    assert (failed.value.reason or "").startswith("MaxRuntimeExceeded")
    assert time.monotonic() - started < 60
    record = RunStore(settings).load("slow-1")
    assert record.status == "Failed" and any(p.name == "tick" for p in record.metrics)
    assert _no_training_containers() == []


def test_checkpoints_resume(
    jobs: Path, training_image: BuildResult, settings: Settings, base_image: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "ckpt"
    first = _train(jobs, "resume.py", settings, base_image, name="resume-1", checkpoints=str(checkpoints))
    # The second through the command, as a user runs it: its JSON document is the run's record.
    done = shipyard("train", str(jobs / "resume.py"), "--name", "resume-2", "--checkpoints", str(checkpoints),
                    "--base", base_image, "--metric", "epoch", "--output", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / "train.v1.json").read_text()))
    assert document["final_metrics"] == {"epoch": 4.0} and document["deploy"] is None
    assert "resuming from epoch 2" in done.stderr  # the log streamed on stderr
    second = RunStore(settings).load("resume-2")
    assert [p.value for p in first.metrics] == [1.0, 2.0]
    assert [p.value for p in second.metrics] == [3.0, 4.0]  # went on from the first run's checkpoint
    assert "resuming from epoch 2" in second.log_tail
    assert json.loads((checkpoints / "state.json").read_text()) == {"epoch": 4}
    assert second.extra["note"].startswith("the model folder holds no Shipyard bundle") and second.bundle_path is None
    assert _layers(first.image_digest or "") == _layers(second.image_digest or "")  # the second build changed nothing


def test_ctrl_c_stops_the_container(jobs: Path, training_image: BuildResult, base_image: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_STATE": str(home / "state.json"),
           "SHIPYARD_ENGINE": "podman"}  # fmt: skip
    process = subprocess.Popen(
        [str(BIN / "shipyard"), "train", str(jobs / "slow.py"), "--name", "stop-1", "--base", base_image],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "metric" in line and "tick=1" in line:
            break
    else:
        pytest.fail("the run never logged: " + "".join(seen[-20:]))
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    record = RunStore(Settings.from_env({"SHIPYARD_HOME": str(home), "SHIPYARD_STATE": str(home / "s.json")})).load(
        "stop-1"
    )
    assert record.status == "Stopped" and record.ended_at is not None
    assert _no_training_containers() == []
