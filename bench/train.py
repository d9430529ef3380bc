"""Training benchmark (issue 14): what `shipyard train --target local` adds to the script's own run time.

    .venv/bin/python bench/train.py                 # writes bench/results/train.{json,md}
    .venv/bin/python bench/train.py --quick         # 2 runs each, results in a temporary directory

The digits script (examples/digits/train_job.py: LogisticRegression, framework-container style) trains on the
digits channel written by examples/digits/make_data.py, on the same training image every way, in one run:

* **shipyard**: `shipyard train examples/digits/train_job.py --data train=… --data validation=…` (the CLI end to
  end: the record, code and data versions, the image cache lookup, the container with the channels mounted, the
  log and metric parsing, model.tar.gz, the bundle check). Added time = its wall time − the script's own seconds
  (the container's `train` prints them: `[shipyard] training seconds=…`).
* **sdk-local** (the anchor): the SageMaker Python SDK's local mode (`Estimator(instance_type="local")` with
  `LocalSession`, `file://` channels, `file://` output), on the same image. It needs Docker and docker compose:
  here the docker CLI talks to Podman's Docker API (`podman system service`) and `docker-compose` is
  podman-compose (the `bench` extra). Added time = its wall time − the same script's own seconds.
* **by-hand**: the same steps typed at the engine: write the three config files, `podman run --rm` with the
  same mounts, tar /opt/ml/model. The floor of any tool that runs a container per job.

Median of 5 warm runs each (the image is built once before, and one run of each is discarded), the three ways
alternating. Then the 1 GB check: a channel of 1.1 GB (a sparse file: no disk, but every byte is read when
hashed) trained on twice; the run folder must not grow by the channel's size (it is mounted, never copied), and
the second run's data version comes from the digest cache.

Target: ≤ 2 s added by `shipyard train` (median), no copy of channel data larger than 1 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
BIN = Path(sys.executable).parent
SCRIPT = ROOT / "examples" / "digits" / "train_job.py"
MAKE_DATA = ROOT / "examples" / "digits" / "make_data.py"
REQUIREMENTS = ROOT / "examples" / "digits" / "requirements-train.txt"
_SECONDS = re.compile(r"\[shipyard\] training seconds=([0-9.]+)")
HYPERPARAMETERS = {"C": "1.0", "max-iter": "200"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 runs each; results in a temporary directory")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base", help="base image [default: the debootstrap base of tests/infra/base_image.py]")
    parser.add_argument("--skip-big", action="store_true", help="skip the 1.1 GB channel check")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    from infra.base_image import ensure_base_image

    base = args.base or ensure_base_image()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-train-"))
    out = work / "results" if args.quick else ROOT / "bench" / "results"
    env = {**os.environ, "SHIPYARD_HOME": str(work / "home"), "SHIPYARD_STATE": str(work / "home" / "state.json"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'home' / 'mlflow.db'}", "SHIPYARD_ENGINE": "podman"}  # fmt: skip
    data = work / "data"
    subprocess.run([sys.executable, str(MAKE_DATA), str(data)], check=True, env=env, capture_output=True)
    channels = {p.name: p for p in sorted(data.iterdir()) if p.is_dir()}
    docker = _DockerApi(work)
    try:
        print("building the training image (once, not measured)", flush=True)
        image = _shipyard_run(env, base, channels, "bench-warmup")["image"]
        times: dict[str, list[dict[str, float]]] = {"shipyard": [], "sdk-local": [], "by-hand": []}
        for i in range(runs + 1):  # the first round is discarded
            for way in times:
                if way == "shipyard":
                    result = _shipyard_run(env, base, channels, f"bench-{i}")
                elif way == "sdk-local":
                    result = _sdk_run(docker, image, channels, work / f"sdk-{i}")
                else:
                    result = _hand_run(image, channels, work / f"hand-{i}")
                if i:
                    times[way].append({"wall_s": result["wall_s"], "script_s": result["script_s"]})
                print(f"  {way:9} run {i}: {result['wall_s']:.2f} s, script {result['script_s']:.2f} s", flush=True)
        big = None if args.skip_big else _big_channel(env, base, channels, work)
    finally:
        docker.close()
    document = _document(times, big, base, runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "train.md").write_text(_markdown(document))
    print(_markdown(document))
    print(f"written to {out}/train.json and train.md")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _shipyard_run(env: dict[str, str], base: str, channels: dict[str, Path], name: str) -> dict[str, Any]:
    command = [str(BIN / "shipyard"), "train", str(SCRIPT), "--name", name, "--base", base, "--output", "json",
               "--requirements", str(REQUIREMENTS)]  # fmt: skip
    for channel, path in channels.items():
        command += ["--data", f"{channel}={path}"]
    for key, value in HYPERPARAMETERS.items():
        command += ["--hp", f"{key}={value}"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"shipyard train failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    record = json.loads(done.stdout)
    run = record.get("run", record)
    return {"wall_s": wall, "script_s": float(run["training_seconds"]), "image": run["image"]}


class _DockerApi:
    """Podman's Docker API on a socket of its own, and a `docker-compose` that is podman-compose: what the SDK's
    local mode needs (it runs `docker images`, `docker-compose -f … up`)."""

    def __init__(self, work: Path) -> None:
        self.socket = work / "podman.sock"
        self.bin = work / "bin"
        self.bin.mkdir()
        compose = self.bin / "docker-compose"
        compose.write_text(f'#!/bin/sh\nexec "{BIN / "podman-compose"}" "$@"\n')
        compose.chmod(0o755)
        self.config = work / "sagemaker-config.yaml"  # the SDK's telemetry off: there is no network here
        self.config.write_text(
            "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
        )
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.socket.exists():
                break
            time.sleep(0.05)

    def environ(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "DOCKER_HOST": f"unix://{self.socket}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(self.config),
        }

    def close(self) -> None:
        self.service.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.service.wait(timeout=10)


def _sdk_run(docker: _DockerApi, image: str, channels: dict[str, Path], work: Path) -> dict[str, Any]:
    """The SDK's local mode in a child process (its environment: the docker shims), timed from the child."""
    work.mkdir(parents=True)
    program = f"""
import json, sys, time
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
session = LocalSession()
session.config = {{"local": {{"local_code": True, "container_root": {str(work)!r}}}}}
estimator = Estimator(image_uri={image!r}, role="arn:aws:iam::123456789012:role/bench", instance_count=1,
                      instance_type="local", sagemaker_session=session, output_path={f"file://{work}/out"!r},
                      hyperparameters={HYPERPARAMETERS!r})
started = time.perf_counter()
estimator.fit({ {k: f"file://{v}" for k, v in channels.items()}!r}, wait=True, logs=True)
print("SDK_WALL", time.perf_counter() - started)
"""
    before = set(_sdk_containers())
    done = subprocess.run(
        [sys.executable, "-c", program], env={**os.environ, **docker.environ()}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    left = [c for c in _sdk_containers() if c not in before]  # podman-compose leaves the exited container
    if left:
        subprocess.run(["podman", "rm", "--force", *left], capture_output=True)
    wall = re.search(r"SDK_WALL ([0-9.]+)", done.stdout)
    seconds = _SECONDS.search(done.stdout + done.stderr)
    if done.returncode != 0 or not wall or not seconds:
        raise SystemExit(
            f"the SDK's local mode failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    if not (work / "out" / "model.tar.gz").is_file():
        raise SystemExit(f"the SDK's local mode wrote no model.tar.gz under {work / 'out'}")
    return {"wall_s": float(wall.group(1)), "script_s": float(seconds.group(1))}


def _sdk_containers() -> list[str]:
    """The containers the SDK's local mode names HOST-algo-1-XXXX (its compose service), running or exited."""
    names = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout
    return [name for name in names.split() if "-algo-1-" in name]


def _hand_run(image: str, channels: dict[str, Path], work: Path) -> dict[str, Any]:
    """Config files, one `podman run --rm` with the mounts, tar the model: typed at the engine."""
    started = time.perf_counter()
    config, model, output = work / "input" / "config", work / "model", work / "output"
    for folder in (config, model, output):
        folder.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    (config / "inputdataconfig.json").write_text(
        json.dumps({c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for c in channels})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
    )
    mounts = [f"-v={config}:/opt/ml/input/config:ro", f"-v={model}:/opt/ml/model", f"-v={output}:/opt/ml/output"]
    mounts += [f"-v={path}:/opt/ml/input/data/{name}:ro" for name, path in channels.items()]
    done = subprocess.run(["podman", "run", "--rm", *mounts, image, "train"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"podman run … train failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    with tarfile.open(work / "model.tar.gz", "w:gz") as archive:
        for item in sorted(model.iterdir()):
            archive.add(item, arcname=item.name)
    wall = time.perf_counter() - started
    seconds = _SECONDS.search(done.stdout + done.stderr)
    if not seconds:
        raise SystemExit(f"the container printed no training seconds:\n{done.stdout[-2000:]}")
    return {"wall_s": wall, "script_s": float(seconds.group(1))}


def _big_channel(env: dict[str, str], base: str, channels: dict[str, Path], work: Path) -> dict[str, Any]:
    """A 1.1 GB sparse file as a third channel, trained on twice: the run folder's growth, each run's wall time."""
    big = work / "big"
    big.mkdir()
    size = 1100 * 1024 * 1024
    with (big / "blob.bin").open("wb") as handle:
        handle.truncate(size)
    results = []
    for i in range(2):
        runs_dir = work / "home" / "runs"
        before = _disk_usage(runs_dir)
        result = _shipyard_run(env, base, {**channels, "extra": big}, f"bench-big-{i}")
        results.append({"wall_s": round(result["wall_s"], 3), "script_s": round(result["script_s"], 3),
                        "runs_folder_growth_bytes": _disk_usage(runs_dir) - before})  # fmt: skip
    return {"channel_bytes": size, "runs": results}


def _disk_usage(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks: a copied sparse file would count its data blocks)."""
    if not path.exists():
        return 0
    return sum(p.lstat().st_blocks * 512 for p in path.rglob("*"))


def _document(
    times: dict[str, list[dict[str, float]]], big: dict[str, Any] | None, base: str, runs: int
) -> dict[str, Any]:
    results = {}
    for way, samples in times.items():
        added = [s["wall_s"] - s["script_s"] for s in samples]
        results[way] = {
            "wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
            "script_s": round(statistics.median(s["script_s"] for s in samples), 3),
            "added_s": round(statistics.median(added), 3),
            "added_runs_s": [round(x, 3) for x in added],
        }
    ratio = (
        results["shipyard"]["added_s"] / results["sdk-local"]["added_s"] if results["sdk-local"]["added_s"] else None
    )
    targets = {"shipyard adds <= 2 s": results["shipyard"]["added_s"] <= 2.0}
    if big is not None:
        targets["no copy of a 1.1 GB channel"] = all(
            r["runs_folder_growth_bytes"] < big["channel_bytes"] / 100 for r in big["runs"]
        )
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "podman": subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "base": base,
        "runs": runs,
        "hyperparameters": HYPERPARAMETERS,
        "results": results,
        "ratio_added_shipyard_to_sdk_local": round(ratio, 3) if ratio else None,
        "big_channel": big,
        "targets": targets,
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _markdown(document: dict[str, Any]) -> str:
    r = document["results"]
    m = document["machine"]
    lines = [
        "# Training benchmark: what `shipyard train --target local` adds to the script's own time",
        "",
        f"{document['date']}, {m['cpus']} CPUs ({m['cpu']}), {m['podman']}, load average {m['load_average_at_end']}, "
        f"base `{document['base']}`, median of {document['runs']} warm runs each (one discarded). "
        "Reproduce: `.venv/bin/python bench/train.py` (see its docstring).",
        "",
        "| | wall (s) | the script's own (s) | added (s) | added, each run (s) |",
        "|---|---:|---:|---:|---|",
    ]
    names = {"shipyard": "`shipyard train` (CLI, end to end)", "sdk-local": "SageMaker SDK local mode (anchor)",
             "by-hand": "by hand: config files + `podman run --rm` + tar"}  # fmt: skip
    for way, row in r.items():
        runs = ", ".join(f"{x:g}" for x in row["added_runs_s"])
        lines.append(f"| {names[way]} | {row['wall_s']} | {row['script_s']} | **{row['added_s']}** | {runs} |")
    lines += [
        "",
        f"Shipyard's added time / the SDK local mode's: {document['ratio_added_shipyard_to_sdk_local']} ×",
        "",
    ]
    big = document.get("big_channel")
    if big:
        lines += [f"1.1 GB channel ({big['channel_bytes']} bytes, mounted read-only):", "",
                  "| run | wall (s) | script (s) | run folder growth (bytes) |", "|---|---:|---:|---:|"]  # fmt: skip
        lines += [
            f"| {i + 1} | {x['wall_s']} | {x['script_s']} | {x['runs_folder_growth_bytes']} |"
            for i, x in enumerate(big["runs"])
        ]
    lines += ["", "| target | met |", "|---|:---:|"]
    lines += [f"| {name} | {'yes' if ok else 'no'} |" for name, ok in document["targets"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
