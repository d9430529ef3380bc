"""Multi-model benchmark (issue 17): many small models on one 2-core server, a Zipf-distributed request mix.

    .venv/bin/python bench/multimodel.py            # 100 models, 3000 requests: bench/results/multimodel.{json,md}
    .venv/bin/python bench/multimodel.py --quick    # 30 models, 400 requests, results in a temporary directory

The models: scikit-learn random forests (25 trees, depth 10, 16 features), each trained here on its own data and
saved as a Shipyard bundle (``model/model.joblib`` inside). Each request is one row, ``POST /invocations`` with
``X-Amzn-SageMaker-Target-Model: mNNN``; the model is drawn from a Zipf law (rank ``k`` with weight ``1/k^s``,
s = 1.1 by default), the same sequence for both servers. Both servers run pinned to cores 0-1; the client
(``--concurrency`` threads, one keep-alive connection each) shares them, as on a 2-core instance.

1. **shipyard**: ``serve`` with ``SAGEMAKER_MULTI_MODEL=true``, 2 workers, the models' directory as
   ``SHIPYARD_MODELS_DIR``, ``SHIPYARD_MODEL_MEMORY_MB`` = ``--budget-mb``. Hits and misses are told apart by the
   answer's ``X-Shipyard-Model-Cache`` header; loads and evictions are read from ``/metrics``.
2. **toolkit (anchor)**: the SageMaker inference toolkit on multi-model-server, the stack SageMaker's own
   framework containers use for multi-model endpoints: a toolkit handler service (``serve_apps/
   mms_sklearn_service.py``) loading the same ``model.joblib`` files. MMS does not choose what to unload: on
   SageMaker the platform's front does (``DELETE /models/NAME`` on the least recently used, then ``POST
   /models``). This script plays that front, with room for as many models as Shipyard held at most in one worker
   in its run (the same number of models resident; the memory each stack needs for them is what is measured).

Figures per server: p50/p99 latency of hits and of misses, loads per second (loads ÷ the run's wall time), the
peak resident memory of the whole server (every process, sampled every 50 ms) against the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "serve_apps"
BIN = Path(sys.executable).parent
FEATURES = 16


def main() -> int:
    args = _parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="shipyard-bench-mme-")) if args.quick else ROOT / "bench" / "results"
    work = Path(tempfile.mkdtemp(prefix="shipyard-mme-"))
    try:
        started = time.perf_counter()
        names = build_models(work / "models", args.models)
        print(f"trained and saved {len(names)} models in {time.perf_counter() - started:.1f} s", flush=True)
        mix = zipf_mix(len(names), args.requests, args.zipf, seed=7)
        rows = np.random.default_rng(3).normal(size=(64, FEATURES)).round(4).tolist()
        result: dict[str, Any] = {
            "models": len(names),
            "requests": args.requests,
            "zipf_s": args.zipf,
            "concurrency": args.concurrency,
            "budget_mb": args.budget_mb,
            "distinct_models_requested": len(set(mix)),
            "machine": _machine(),
        }
        shipyard = run_shipyard(work, names, mix, rows, args)
        result["shipyard"] = shipyard
        print(json.dumps(shipyard, indent=1), flush=True)
        capacity = max(1, int(shipyard["peak_models_per_worker"]))
        try:
            result["toolkit"] = run_toolkit(work, names, mix, rows, args, capacity)
            print(json.dumps(result["toolkit"], indent=1), flush=True)
        except Exception as exc:  # the anchor could not run here: said so in the results, never hidden
            result["toolkit"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"the toolkit anchor failed: {exc}", file=sys.stderr)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "multimodel.json").write_text(json.dumps(result, indent=1) + "\n")
        (out_dir / "multimodel.md").write_text(render(result))
        print(f"wrote {out_dir / 'multimodel.json'} and {out_dir / 'multimodel.md'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 models, 400 requests, results in a temp dir")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--budget-mb", type=float, default=8.0, help="SHIPYARD_MODEL_MEMORY_MB (both workers)")
    args = parser.parse_args()
    if args.quick:
        args.models, args.requests = min(args.models, 30), min(args.requests, 400)
    return args


# -- the models and the mix ---------------------------------------------------------------------------
def build_models(directory: Path, count: int) -> list[str]:
    from sklearn.ensemble import RandomForestClassifier

    import shipyard

    directory.mkdir(parents=True)
    names = []
    for index in range(count):
        rng = np.random.default_rng(index)
        X = rng.normal(size=(300, FEATURES))
        y = (X @ rng.normal(size=FEATURES) > 0).astype(int)
        model = RandomForestClassifier(n_estimators=25, max_depth=10, random_state=index, n_jobs=1).fit(X, y)
        name = f"m{index:03d}"
        shipyard.save(model, directory / name, example=X[:2], name=name)
        names.append(name)
    return names


def zipf_mix(models: int, requests: int, s: float, seed: int) -> list[int]:
    """``requests`` model indices, rank k drawn with weight 1/k^s (the popular models first, shuffled names)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, models + 1) ** s
    order = rng.permutation(models)  # which model has which rank
    ranks = rng.choice(models, size=requests, p=weights / weights.sum())
    return [int(order[r]) for r in ranks]


# -- measuring ----------------------------------------------------------------------------------------
class MemorySampler:
    """The peak summed RSS of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> int:
        page = os.sysconf("SC_PAGE_SIZE")
        total = 0
        for pid in [self.pid, *_descendants(self.pid)]:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(0.05)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in _descendants(child)]


def drive(
    call: Callable[[http.client.HTTPConnection, str, bytes], tuple[int, str]],
    port: int,
    names: list[str],
    mix: list[int],
    rows: list[list[float]],
    concurrency: int,
) -> tuple[list[tuple[float, str, int]], float]:
    """Send the mix with ``concurrency`` threads; (seconds, hit|miss, status) per request and the wall time."""
    results: list[tuple[float, str, int]] = [(0.0, "", 0)] * len(mix)
    local = threading.local()

    def one(index: int) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps({"instances": [rows[index % len(rows)]]}).encode()
        started = time.perf_counter()
        status, cache = call(connection, names[mix[index]], body)
        results[index] = (time.perf_counter() - started, cache, status)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(mix))))
    return results, time.perf_counter() - started


def summary(results: list[tuple[float, str, int]], wall_s: float, loads: float) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    hits = [s for s, cache, status in results if status == 200 and cache == "hit"]
    misses = [s for s, cache, status in results if status == 200 and cache == "miss"]
    errors = sum(1 for _, _, status in results if status != 200)
    return {
        "hits": len(hits),
        "misses": len(misses),
        "errors": errors,
        "hit_p50_ms": pct(hits, 0.5),
        "hit_p99_ms": pct(hits, 0.99),
        "miss_p50_ms": pct(misses, 0.5),
        "miss_p99_ms": pct(misses, 0.99),
        "miss_mean_ms": round(statistics.fmean(misses) * 1000, 2) if misses else None,
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(results) / wall_s, 1),
        "loads": loads,
        "loads_per_s": round(loads / wall_s, 2),
    }


# -- shipyard -----------------------------------------------------------------------------------------
def run_shipyard(
    work: Path, names: list[str], mix: list[int], rows: list[list[float]], args: argparse.Namespace
) -> dict[str, Any]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SHIPYARD_"))},
        "SAGEMAKER_MULTI_MODEL": "true",
        "SHIPYARD_MODELS_DIR": str(work / "models"),
        "SHIPYARD_MODEL_MEMORY_MB": str(args.budget_mb),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SHIPYARD_HOST": "127.0.0.1",
        "SHIPYARD_ACCESS_LOG": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    log = (work / "shipyard.log").open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", "0,1", str(BIN / "serve")], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_http(port, "/ping", process)
        idle = MemorySampler(process.pid).sample()

        def call(connection: http.client.HTTPConnection, name: str, body: bytes) -> tuple[int, str]:
            connection.request(
                "POST",
                "/invocations",
                body,
                {"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": name},
            )
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("x-shipyard-model-cache", "")

        peak_loaded = [0.0]
        stop = threading.Event()

        def watch_loaded() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    peak_loaded[0] = max(peak_loaded[0], _metric(port, "shipyard_models_loaded"))
                stop.wait(0.25)

        watcher = threading.Thread(target=watch_loaded, daemon=True)
        watcher.start()
        with MemorySampler(process.pid) as memory:
            results, wall = drive(call, port, names, mix, rows, args.concurrency)
        stop.set()
        watcher.join()
        loads = _metric(port, "shipyard_model_loads")
        figures = summary(results, wall, loads)
        figures.update(
            {
                "evictions": _metric(port, "shipyard_model_unloads", 'reason="evicted"'),
                "model_memory_at_end_mb": round(_metric(port, "shipyard_model_memory_bytes") / 2**20, 2),
                "peak_models_loaded": peak_loaded[0],
                "peak_models_per_worker": round(peak_loaded[0] / 2, 1),
                "idle_rss_mb": round(idle / 2**20, 1),
                "peak_rss_mb": round(memory.peak / 2**20, 1),
                "peak_over_idle_mb": round((memory.peak - idle) / 2**20, 1),
                "budget_mb": args.budget_mb,
            }
        )
        return figures
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()


def _metric(port: int, name: str, label: str = "") -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        bare = key.split("{")[0]
        if bare in (name, name + "_total") and label in key:
            total += float(value)
    return total


# -- the toolkit on multi-model-server ----------------------------------------------------------------
def run_toolkit(
    work: Path, names: list[str], mix: list[int], rows: list[list[float]], args: argparse.Namespace, capacity: int
) -> dict[str, Any]:
    if shutil.which("java") is None:
        raise RuntimeError("no java on PATH: multi-model-server needs a Java runtime")
    inference, management = _free_port(low=True), _free_port(low=True)  # MMS refuses ports in the ephemeral range
    config = work / "mms.properties"
    config.write_text(
        "\n".join(
            [
                "enable_envvars_config=true",
                "model_store=/",
                "default_service_handler=mms_sklearn_service:handle",
                "default_workers_per_model=1",
                "async_logging=true",
                "decode_input_request=false",
                f"inference_address=http://127.0.0.1:{inference}",
                f"management_address=http://127.0.0.1:{management}",
                "default_response_timeout=120",
                "vmargs=-Xmx512m -XX:+UseSerialGC",
                "",
            ]
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(APPS), os.environ.get("PYTHONPATH", "")]),
        "SAGEMAKER_MULTI_MODEL": "true",
        "LOG_LOCATION": str(work / "mms-logs"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (work / "mms.log").open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", "0,1", str(BIN / "multi-model-server"), "--start", "--foreground", "--mms-config",
         str(config), "--model-store", "/"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=work,
    )  # fmt: skip
    try:
        try:
            _wait_http(management, "/models", process, timeout=120)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log ends: {(work / 'mms.log').read_text()[-1500:]}") from None
        idle = MemorySampler(process.pid).sample()
        front = _Front(management, work / "models", capacity)

        def call(connection: http.client.HTTPConnection, name: str, body: bytes) -> tuple[int, str]:
            cache = front.ensure(name)
            connection.request("POST", f"/predictions/{name}", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status, cache

        with MemorySampler(process.pid) as memory:
            results, wall = drive(call, inference, names, mix, rows, args.concurrency)
        figures = summary(results, wall, float(front.loads))
        figures.update(
            {
                "evictions": front.evictions,
                "models_resident": capacity,
                "idle_rss_mb": round(idle / 2**20, 1),
                "peak_rss_mb": round(memory.peak / 2**20, 1),
                "peak_over_idle_mb": round((memory.peak - idle) / 2**20, 1),
            }
        )
        return figures
    finally:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        log.close()


class _Front:
    """What SageMaker's front does for a multi-model endpoint on MMS: POST /models on a miss, DELETE /models/NAME
    on the least recently used when the instance is full (here: ``capacity`` models). A load blocks only the
    requests for that model; requests for loaded models go straight on."""

    def __init__(self, port: int, models: Path, capacity: int) -> None:
        self.port, self.models, self.capacity = port, models, capacity
        self.loaded: OrderedDict[str, None] = OrderedDict()
        self.loading: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.loads = self.evictions = 0

    def _management(self, method: str, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status

    def ensure(self, name: str) -> str:
        with self.lock:
            if name in self.loaded:
                self.loaded.move_to_end(name)
                return "hit"
            waiting = self.loading.get(name)
            if waiting is None:
                done = self.loading[name] = threading.Event()
                victims = []
                while self.loaded and len(self.loaded) + len(self.loading) > self.capacity:
                    victims.append(self.loaded.popitem(last=False)[0])
        if waiting is not None:  # another request is loading it: wait for that load
            waiting.wait()
            return "miss"
        try:
            for victim in victims:
                self._management("DELETE", f"/models/{victim}")
                self.evictions += 1
            url = self.models / name
            status = self._management("POST", f"/models?url={url}&model_name={name}&initial_workers=1&synchronous=true")
            if status != 200:
                raise RuntimeError(f"MMS answered {status} to registering {name}")
            with self.lock:
                self.loaded[name] = None
                self.loads += 1
        finally:
            with self.lock:
                del self.loading[name]
            done.set()
        return "miss"


# -- plumbing -----------------------------------------------------------------------------------------
def _free_port(low: bool = False) -> int:
    """A free port: the kernel's pick, or with ``low`` one under 32768 (multi-model-server says "Invalid port
    number" for the kernel's ephemeral ones)."""
    candidates = range(18000, 32000, 7) if low else [0]
    for candidate in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise RuntimeError("no free port")


def _wait_http(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no 200 from {path} within {timeout:g} s")


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "system": platform.platform(),
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        ("hits / misses / errors", "{hits} / {misses} / {errors}"),
        ("hit p50 / p99 (ms)", "{hit_p50_ms} / {hit_p99_ms}"),
        ("miss p50 / p99 (ms)", "{miss_p50_ms} / {miss_p99_ms}"),
        ("loads (loads/s)", "{loads:g} ({loads_per_s})"),
        ("evictions", "{evictions:g}"),
        ("requests/s", "{requests_per_s}"),
        ("peak RSS of the server (MB)", "{peak_rss_mb} (idle {idle_rss_mb})"),
    ]
    servers = [("shipyard", result["shipyard"]), ("toolkit + MMS", result["toolkit"])]
    lines = [
        "# Multi-model benchmark (bench/multimodel.py)",
        "",
        f"{result['models']} models (random forests, 25 trees, depth 10), {result['requests']} requests, Zipf s = "
        f"{result['zipf_s']} ({result['distinct_models_requested']} distinct models asked for), "
        f"{result['concurrency']} client threads; servers pinned to cores 0-1 with the client on the same cores.",
        f"Shipyard: 2 workers, SHIPYARD_MODEL_MEMORY_MB = {result['budget_mb']} (both workers); the toolkit: MMS "
        f"with this script as SageMaker's front, {result['toolkit'].get('models_resident', '?')} models resident "
        "(Shipyard's peak per worker).",
        "",
        "| figure | " + " | ".join(name for name, _ in servers) + " |",
        "|---|" + "---|" * len(servers),
    ]
    for label, template in rows:
        cells = []
        for _, figures in servers:
            try:
                cells.append(template.format(**figures))
            except (KeyError, ValueError):
                cells.append(figures.get("error", "n/a") if "error" in figures else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    shipyard = result["shipyard"]
    lines += [
        "",
        f"Shipyard's loaded models took {shipyard['model_memory_at_end_mb']} MB at the end of the run (its own "
        f"accounting) against the {result['budget_mb']} MB budget; its process tree peaked at "
        f"{shipyard['peak_over_idle_mb']} MB over idle. Peak models loaded (both workers): "
        f"{shipyard['peak_models_loaded']:g}.",
        "",
        f"Machine: {result['machine']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
