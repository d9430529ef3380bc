"""Serving benchmark (issue 3): Shipyard against the HTTP floor, the compute floor and the tutorial baseline.

    .venv/bin/python bench/serve.py            # full run, 10 s per point: writes bench/results/serve.{json,md}
    .venv/bin/python bench/serve.py --quick    # smoke run, 2 s per point, results in a temporary directory

Model A: LogisticRegression on scikit-learn's digits (examples/digits/train.py), one 64-float row per
request, JSON in, JSON out. The server under test is pinned to one core and the load generator (wrk,
one thread, connections = concurrency, one fixed body on wrk's fast path) to the other. Measured in the same run:

1. floor: a minimal ASGI app answering a constant on Shipyard's HTTP stack (uvicorn + httptools + uvloop);
2. compute: ``model.predict`` in process on batch 1 and batch 64;
3. tutorial: the Flask app of the usual guide under gunicorn (one sync worker);
4. shipyard: ``serve`` with one worker, access log off, then on; and with the model in the worker's own
   thread instead of its model process (``SHIPYARD_MODEL_PROCESS=0``, access log off): what the model
   process costs, before and after in one run.

Every server's answers are checked against the in-process model before and after it is loaded (32 distinct
rows). Every point records wrk's own CPU share (of its pinned core) and both cores' busy shares: a point where wrk
used CLIENT_BOUND of its core or more measured the load generator, not the server, and is reported as such, never
as the server's figure.
See bench/README.md for what each figure means and the targets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import CLIENT_BOUND, busy, children_cpu, core_times, tree_cpu
from serve_report import machine_info, render_markdown, targets

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "serve_apps"
BIN = Path(sys.executable).parent
CONCURRENCY = (1, 8, 64)


def main() -> int:
    args = _parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed. Install it with:  apt-get install -y wrk   (Debian/Ubuntu)", file=sys.stderr)
        print("or: brew install wrk (macOS), then run this script again.", file=sys.stderr)
        return 2
    missing = [name for name in ("serve", "gunicorn", "uvicorn") if not (BIN / name).exists()]
    if missing:
        print(
            f"missing {', '.join(missing)} in {BIN}: run  SHIPYARD_EXTRAS=dev,bench bash scripts/setup.sh",
            file=sys.stderr,
        )
        return 2
    cores = sorted(os.sched_getaffinity(0))
    if args.server_core not in cores or args.load_core not in cores or args.server_core == args.load_core:
        print(f"need two distinct usable cores (have {cores}); see --server-core/--load-core", file=sys.stderr)
        return 2

    quiet = _wait_until_quiet(args.max_load, args.wait_quiet)
    out_dir = Path(tempfile.mkdtemp(prefix="shipyard-bench-")) if args.quick and args.out is None else args.out
    out_dir = out_dir or ROOT / "bench" / "results"
    work = Path(tempfile.mkdtemp(prefix="shipyard-serve-bench-"))
    try:
        results = run(args, wrk, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"] = machine_info(args.server_core, args.load_core, wrk)
    results["machine"]["load_before"] = quiet
    results["machine"]["max_load"] = args.max_load
    results["machine"]["load_after"] = list(os.getloadavg())
    results["targets"] = targets(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "serve.md").write_text(render_markdown(results))
    print(render_markdown(results))
    print(f"results: {out_dir / 'serve.json'}, {out_dir / 'serve.md'}")
    failed_checks = [name for name, server in results["servers"].items() if not server["correct"]]
    if failed_checks:
        print(f"WRONG ANSWERS from: {', '.join(failed_checks)}", file=sys.stderr)
        return 1
    return 0


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured point (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up load per server (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s points, 1 s warm-up, results to a temp dir")
    p.add_argument("--concurrency", default="1,8,64", help="comma-separated connection counts (default 1,8,64)")
    p.add_argument(
        "--servers", default="floor,tutorial,shipyard-inworker,shipyard,shipyard-log", help="which servers to run"
    )
    p.add_argument("--server-core", type=int, default=0, help="core the server runs on (default 0)")
    p.add_argument("--load-core", type=int, default=1, help="core wrk runs on (default 1)")
    p.add_argument("--max-load", type=float, default=0.5, help="wait for a 1-min load average below this")
    p.add_argument("--wait-quiet", type=float, default=600.0, help="seconds to wait for a quiet machine (default 600)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.wait_quiet = min(args.duration, 2.0), min(args.warmup, 1.0), 0.0
    args.concurrency = tuple(int(c) for c in args.concurrency.split(","))
    args.servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    return args


def _wait_until_quiet(max_load: float, wait_s: float) -> list[float]:
    deadline = time.monotonic() + wait_s
    while True:
        load = list(os.getloadavg())
        if load[0] < max_load or time.monotonic() >= deadline:
            if load[0] >= max_load:
                print(f"warning: 1-min load average {load[0]:.2f} >= {max_load}; figures may be noisy", file=sys.stderr)
            return load
        print(f"load average {load[0]:.2f} >= {max_load}: waiting for a quiet machine…", file=sys.stderr)
        time.sleep(15)


# -- the run -------------------------------------------------------------------------------------
def run(args: argparse.Namespace, wrk: str, work: Path) -> dict[str, Any]:
    bundle = work / "digits-bundle"
    subprocess.run(
        [sys.executable, str(ROOT / "examples/digits/train.py"), str(bundle)], check=True, stdout=subprocess.DEVNULL
    )
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits

    model = joblib.load(bundle / "model" / "model.joblib")
    features, _ = load_digits(return_X_y=True)
    rows = features[-32:]  # held-out style rows: every server's answers to all 32 are checked
    expected = [int(c) for c in model.predict(rows)]
    bodies = [json.dumps({"instances": [row.tolist()]}) for row in rows]
    bodies_file = work / "body.json"  # the one body wrk sends (a fixed body keeps wrk on its fast path)
    bodies_file.write_text(bodies[0])

    results: dict[str, Any] = {
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": list(args.concurrency),
            "wrk_threads": 1,
            "body_bytes": len(bodies[0]),
            "load_body": "one fixed body (wrk's fast path: no Lua per request)",
            "checked_bodies": len(bodies),
            "client_bound_at": CLIENT_BOUND,
            "server_core": args.server_core,
            "load_core": args.load_core,
        },
        "compute": _compute_floor(model, features, np, args.server_core),
        "servers": {},
    }
    port = _free_port()
    for name in args.servers:
        command, env, log_name = _server_command(name, bundle, port)
        log_path = work / f"{log_name}.log"
        print(f"== {name}: {' '.join(command)}", file=sys.stderr)
        with _server(command, env, port, args.server_core, log_path) as pid:
            check_before = _check(port, name, bodies, expected)
            _wrk(wrk, port, 64, args.warmup, args.load_core, bodies_file, pid, args.server_core)
            points = {}
            for c in args.concurrency:
                point = _wrk(wrk, port, c, args.duration, args.load_core, bodies_file, pid, args.server_core)
                print(
                    f"   c={c:<3} {point['rps']:>9.0f} req/s  p50 {point['p50_ms']:.3f} ms  "
                    f"p99 {point['p99_ms']:.3f} ms  errors {point['errors']}  "
                    f"server CPU {point['server_cpu']:.0%}  client core {point['client_busy']:.0%}"
                    + ("  CLIENT-BOUND" if point["client_bound"] else ""),
                    file=sys.stderr,
                )
                points[str(c)] = point
            check_after = _check(port, name, bodies, expected)
        results["servers"][name] = {
            "command": " ".join(command),
            "env": {k: v for k, v in env.items() if k.startswith(("SAGEMAKER_", "SHIPYARD_"))},
            "points": points,
            "check": [check_before, check_after],
            "correct": check_before["ok"] and check_after["ok"],
            "log_bytes": log_path.stat().st_size if log_path.exists() else 0,
        }
    return results


def _server_command(name: str, bundle: Path, port: int) -> tuple[list[str], dict[str, str], str]:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith(("SAGEMAKER_", "SHIPYARD_", "PROMETHEUS_"))]:
        del env[key]
    if name == "floor":
        return (
            [
                str(BIN / "uvicorn"),
                "--app-dir",
                str(APPS),
                "floor:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--workers",
                "1",
                "--no-access-log",
                "--no-proxy-headers",
                "--log-level",
                "warning",
                "--backlog",
                "2048",
            ],
            env,
            name,
        )
    if name == "tutorial":
        env["MODEL_PATH"] = str(bundle / "model" / "model.joblib")
        return (
            [
                str(BIN / "gunicorn"),
                "--workers",
                "1",
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(APPS),
                "--log-level",
                "warning",
                "tutorial_flask:app",
            ],
            env,
            name,
        )
    if name in ("shipyard", "shipyard-log", "shipyard-inworker"):
        env |= {
            "SHIPYARD_MODEL_DIR": str(bundle),
            "SHIPYARD_HOST": "127.0.0.1",
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            "SHIPYARD_ACCESS_LOG": "1" if name == "shipyard-log" else "0",
            "SHIPYARD_MODEL_PROCESS": "0" if name == "shipyard-inworker" else "1",
            "SHIPYARD_LOG_LEVEL": "WARNING",
        }
        return [str(BIN / "serve")], env, name
    raise SystemExit(f"unknown server {name!r}; choose from floor, tutorial, shipyard, shipyard-log, shipyard-inworker")


@contextmanager
def _server(command: list[str], env: dict[str, str], port: int, core: int, log_path: Path) -> Iterator[int]:
    """Start a server pinned to ``core`` (stdout and stderr to ``log_path``), wait for it, stop it by its PID."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", str(core), *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process, log_path)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this script created for it
            process.wait(5)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = _request(port, "GET", "/ping", None)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer /ping within {timeout:g} s:\n{log_path.read_text()[-3000:]}")


def _request(port: int, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _check(port: int, name: str, bodies: list[str], expected: list[int]) -> dict[str, Any]:
    """Send every benchmark body once; each answer must name the class the in-process model predicts."""
    wrong = []
    for body, want in zip(bodies, expected, strict=True):
        status, answer = _request(port, "POST", "/invocations", body.encode())
        if name == "floor":  # the floor answers a constant by design; only its status is checked
            ok = status == 200
        else:
            try:
                ok = status == 200 and json.loads(answer)["predictions"] == [want]
            except (ValueError, KeyError, TypeError):
                ok = False
        if not ok:
            wrong.append({"status": status, "answer": answer[:200].decode("utf-8", "replace"), "expected": want})
    return {"sent": len(bodies), "wrong": len(wrong), "ok": not wrong, "first_wrong": wrong[:1]}


def _wrk(
    wrk: str, port: int, connections: int, seconds: float, core: int, bodies: Path, server_pid: int, server_core: int
) -> dict[str, Any]:
    command = [
        "taskset",
        "-c",
        str(core),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(APPS / "wrk_post.lua"),
        f"http://127.0.0.1:{port}/invocations",
    ]
    cpu_before, core_before, wrk_before = tree_cpu(server_pid), core_times(), children_cpu()
    wall = time.monotonic()
    done = subprocess.run(command, env={**os.environ, "WRK_BODY": str(bodies)}, capture_output=True, text=True)
    wall = time.monotonic() - wall
    cpu_used, core_after = tree_cpu(server_pid) - cpu_before, core_times()
    wrk_cpu = (children_cpu() - wrk_before) / wall  # wrk is the only child this script waited for meanwhile
    core_busy = {c: busy(core_before[c], core_after[c]) for c in (server_core, core)}
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary = json.loads(line[len("WRK_JSON ") :])
    lat = summary["latency_us"]
    return {
        "connections": connections,
        "requests": summary["requests"],
        "rps": summary["requests"] / (summary["duration_us"] / 1e6),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p99.9"] / 1000,
        "mean_ms": lat["mean"] / 1000,
        "max_ms": lat["max"] / 1000,
        "errors": sum(summary["errors"].values()),
        "error_kinds": summary["errors"],
        "server_cpu": cpu_used / wall,  # share of one core the server's processes used
        "core_busy": {str(c): share for c, share in core_busy.items()},
        # wrk's own CPU time over the point (1 = its whole core): near 100% wrk, not the server, set the pace
        "client_busy": wrk_cpu,
        "client_bound": wrk_cpu >= CLIENT_BOUND,
    }


def _compute_floor(model: Any, features: Any, np: Any, core: int) -> dict[str, Any]:
    """``model.predict`` in this process, pinned to the server's core: the cost no server can avoid."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        out: dict[str, Any] = {}
        for batch in (1, 64):
            x = np.ascontiguousarray(features[:batch])
            number = 2000 if batch == 1 else 1000
            per_call = [t / number for t in timeit.repeat(lambda x=x: model.predict(x), number=number, repeat=7)]
            median = statistics.median(per_call)
            out[f"batch_{batch}"] = {
                "us_per_call": median * 1e6,
                "us_per_row": median * 1e6 / batch,
                "us_per_call_min": min(per_call) * 1e6,
            }
        return out
    finally:
        os.sched_setaffinity(0, affinity)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
