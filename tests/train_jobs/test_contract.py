"""The training contract, pure: the files the host writes, the environment the container computes from them, and
the image's ``train`` run on a temporary /opt/ml (a subprocess, no container) with a framework-style script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.training.contract import Paths, decode_hyperparameters, encode_hyperparameters, training_env, write_config
from shipyard.training.metrics import MetricParser, default_regex, log_metric

HYPERPARAMETERS = {"epochs": 10, "lr": 0.1, "shuffle": True, "optimizer": "adam", "layers": "[64, 32]", "k": 3}


def test_hyperparameters_json_holds_strings_only(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    write_config(paths, hyperparameters=HYPERPARAMETERS, channels={"train": "text/csv", "validation": None},
                 instance_type="ml.m5.large")  # fmt: skip
    written = json.loads(paths.hyperparameters_file.read_text())
    assert written == {"epochs": "10", "lr": "0.1", "shuffle": "true", "optimizer": "adam", "layers": "[64, 32]",
                       "k": "3"}  # fmt: skip
    assert all(isinstance(v, str) for v in written.values())
    data = json.loads(paths.input_data_config_file.read_text())
    assert data["train"] == {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                             "RecordWrapperType": "None", "ContentType": "text/csv"}  # fmt: skip
    assert "ContentType" not in data["validation"]
    resources = json.loads(paths.resource_config_file.read_text())
    assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"]
    assert resources["network_interface_name"] == "eth0"
    assert resources["current_group_name"] == "homogeneousCluster"
    assert resources["instance_groups"] == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1"]}
    ]
    for folder in (paths.model_dir, paths.output_data_dir, paths.checkpoints_dir, paths.data_dir):
        assert folder.is_dir()


def test_decoding_follows_the_toolkit() -> None:
    decoded = decode_hyperparameters(encode_hyperparameters(HYPERPARAMETERS))
    # A JSON-looking string comes back as JSON (the toolkit json.loads every value, falling back to the string).
    assert decoded == {"epochs": 10, "lr": 0.1, "shuffle": True, "optimizer": "adam", "layers": [64, 32], "k": 3}
    assert decode_hyperparameters({"x": "not json {"}) == {"x": "not json {"}


def test_environment(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    write_config(paths, hyperparameters={**HYPERPARAMETERS, "sagemaker_program": "train.py"},
                 channels={"train": None, "validation": None}, instance_type="ml.c5.xlarge")  # fmt: skip
    env = training_env(paths, program="train.py", job_name="job-1", num_cpus=4, num_gpus=0)
    assert env["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert env["SM_CHANNEL_TRAIN"] == str(tmp_path / "input" / "data" / "train")
    assert env["SM_CHANNEL_VALIDATION"] == str(tmp_path / "input" / "data" / "validation")
    hps = json.loads(env["SM_HPS"])
    assert hps == {"epochs": 10, "lr": 0.1, "shuffle": True, "optimizer": "adam", "layers": [64, 32], "k": 3}
    assert "sagemaker_program" not in hps  # the toolkit's own are not the user's
    assert env["SM_HP_EPOCHS"] == "10" and env["SM_HP_LR"] == "0.1" and env["SM_HP_SHUFFLE"] == "true"
    assert env["SM_HP_OPTIMIZER"] == "adam" and env["SM_HP_LAYERS"] == "[64,32]"
    assert env["SM_NUM_CPUS"] == "4" and env["SM_NUM_GPUS"] == "0"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.c5.xlarge"
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "output" / "data")
    assert env["SM_OUTPUT_DIR"] == str(tmp_path / "output") and env["SM_INPUT_DIR"] == str(tmp_path / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(tmp_path / "input" / "config")
    assert json.loads(env["SM_INPUT_DATA_CONFIG"])["train"]["TrainingInputMode"] == "File"
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_host"] == "algo-1"
    assert json.loads(env["SM_USER_ARGS"]) == [
        "--epochs", "10", "-k", "3", "--layers", "[64, 32]", "--lr", "0.1", "--optimizer", "adam", "--shuffle", "True",
    ]  # fmt: skip
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_DIR"] == str(tmp_path / "code")
    assert env["SM_LOG_LEVEL"] == "20" and env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    training = json.loads(env["SM_TRAINING_ENV"])
    assert training["channel_input_dirs"]["train"] == env["SM_CHANNEL_TRAIN"]
    assert training["hyperparameters"] == hps and training["job_name"] == "job-1"
    assert training["model_dir"] == env["SM_MODEL_DIR"]


def test_metric_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log_metric("accuracy", 0.97)
    log_metric("loss", 1, step=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["[metric] accuracy=0.97", "[metric] loss=1.0 step=3"]
    with pytest.raises(ValueError):
        log_metric("bad name", 1)
    import re

    assert re.search(default_regex("accuracy"), lines[0]).group(1) == "0.97"  # type: ignore[union-attr]
    parser = MetricParser({"accuracy": None, "error": r"validation error: ([0-9.]+)", "odd": r"odd=(\S+)"})
    points = parser.feed(lines[1])
    assert [(p.name, p.value, p.step) for p in points] == [("loss", 1.0, 3)]
    assert [(p.name, p.value) for p in parser.feed("validation error: 0.031")] == [("error", 0.031)]
    assert parser.feed("odd=abc") == []  # not a number: skipped, not fatal
    assert parser.feed("[metric] x=oops") == []


FRAMEWORK_SCRIPT = """
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--shuffle", type=str, default="False")
parser.add_argument("--optimizer", type=str)
parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
parser.add_argument("--hosts", type=list, default=json.loads(os.environ["SM_HOSTS"]))
parser.add_argument("--current-host", type=str, default=os.environ["SM_CURRENT_HOST"])
args, _ = parser.parse_known_args()
rows = open(os.path.join(args.train, "data.csv")).read().split()
with open(os.path.join(args.model_dir, "model.json"), "w") as out:
    json.dump({"epochs": args.epochs, "lr": args.lr, "shuffle": args.shuffle, "optimizer": args.optimizer,
               "rows": len(rows), "hosts": args.hosts, "cwd": os.getcwd(), "argv": sys.argv[1:]}, out)
print("[metric] rows=%d" % len(rows))
if args.epochs > 100:
    raise RuntimeError("too many epochs")
"""


def _run_entry(root: Path, hyperparameters: dict[str, object], script: str) -> subprocess.CompletedProcess[str]:
    paths = Paths(root)
    write_config(paths, hyperparameters=hyperparameters, channels={"train": None}, instance_type="local")
    (paths.data_dir / "train").mkdir(parents=True, exist_ok=True)
    (paths.data_dir / "train" / "data.csv").write_text("1\n2\n3\n")
    paths.code_dir.mkdir(exist_ok=True)
    (paths.code_dir / "train.py").write_text(script)
    env = {**os.environ, "SHIPYARD_OPT_ML": str(root), "SAGEMAKER_PROGRAM": "train.py"}
    env.pop("SAGEMAKER_SUBMIT_DIRECTORY", None)
    train = Path(sys.executable).with_name("train")
    return subprocess.run([str(train)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_entry_runs_a_framework_script_unchanged(tmp_path: Path) -> None:
    done = _run_entry(tmp_path, {"epochs": 5, "lr": 0.5, "shuffle": True, "optimizer": "sgd"}, FRAMEWORK_SCRIPT)
    assert done.returncode == 0, done.stderr
    model = json.loads((tmp_path / "model" / "model.json").read_text())
    assert model["epochs"] == 5 and model["lr"] == 0.5 and model["shuffle"] == "True" and model["optimizer"] == "sgd"
    assert model["rows"] == 3 and model["hosts"] == ["algo-1"] and model["cwd"] == str(tmp_path / "code")
    assert model["argv"] == ["--epochs", "5", "--lr", "0.5", "--optimizer", "sgd", "--shuffle", "True"]
    assert "[metric] rows=3" in done.stdout.splitlines()
    last = done.stdout.splitlines()[-1]
    assert last.startswith("[shipyard] training seconds=") and last.endswith("status=0")
    assert not (tmp_path / "output" / "failure").exists()


def test_entry_writes_the_failure_and_exits_with_the_status(tmp_path: Path) -> None:
    done = _run_entry(tmp_path, {"epochs": 500}, FRAMEWORK_SCRIPT)
    assert done.returncode == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert "exited with status 1" in failure and "RuntimeError: too many epochs" in failure
    assert "RuntimeError: too many epochs" in done.stderr  # passed through
    own = "open(os.environ['SM_OUTPUT_DIR'] + '/failure', 'w').write('my reason'); raise SystemExit(3)\nimport os\n"
    done = _run_entry(tmp_path / "own", {}, "import os\n" + own)
    assert done.returncode == 3
    assert (tmp_path / "own" / "output" / "failure").read_text() == "my reason"  # the script's own is kept


def test_entry_without_a_program_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_OPT_ML": str(tmp_path)}
    env.pop("SAGEMAKER_PROGRAM", None)
    done = subprocess.run([str(Path(sys.executable).with_name("train"))], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "no training program" in done.stderr
    assert "no training program" in (tmp_path / "output" / "failure").read_text()


def test_the_command_names_the_flag_at_fault(tmp_path: Path) -> None:
    from infra.cli import shipyard

    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    done = shipyard("train", str(script), "--hp", "novalue")
    assert done.returncode == 2 and "--hp" in done.stderr
    done = shipyard("train", str(script), "--data", f"train={tmp_path / 'missing'}")
    assert done.returncode == 2 and "does not exist (--data)" in " ".join(done.stderr.split())
    done = shipyard("train", str(script), "--instance-count", "2")
    assert done.returncode == 2 and "--instance-count" in done.stderr
