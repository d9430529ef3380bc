"""Monitoring benchmark (issue 7): ``shipyard monitor check`` against Evidently and NannyML, and the cost of
data capture to the server's throughput.

    .venv/bin/python bench/monitor.py                  # writes bench/results/monitor.{json,md}
    .venv/bin/python bench/monitor.py --quick          # 1/10 of the rows, results in a temporary directory
    .venv/bin/python bench/monitor.py --skip-capture   # drift only

Drift data (seeded): 64 numeric features (normal, log-normal, uniform and gamma, in turn); 200,000 reference
rows and 1,000,000 current rows in which f00–f07 are shifted by 0.3 σ and f08 is scaled × 1.5 around its
mean. The current rows are stored twice: as Parquet (row groups of 131,072 rows) and as captured traffic —
1,000,000 SageMaker capture records, one CSV row per request, spread over 24 hourly files, written by the
server's own record encoder (``serving/capture.py``; a million requests through HTTP would only add hours).

"features flagged" is the drift each contender reports; for Shipyard, "other violations" lists every other
violation and the cells its statistics count missing — both must be none, since the current rows are of the
same kind as the reference (issue 11: a Parquet check once counted 44 columns missing).

Every contender runs in its own process, measured from outside (wall time, and peak RSS from
``getrusage(RUSAGE_CHILDREN)`` of a wrapper that runs only that process), on the same files:

* ``shipyard monitor baseline`` on the reference Parquet, then ``shipyard monitor check`` on the Parquet and
  on the capture directory (the CLI, end to end: imports, reading, scoring, writing the results);
* exact ``scipy.stats.ks_2samp`` + ``wasserstein_distance`` on the full arrays (flag: Wasserstein / σ > 0.1);
* Evidently's ``DataDriftPreset`` (its defaults) and NannyML's ``UnivariateDriftCalculator`` (Jensen–Shannon,
  its default chunking and thresholds; flagged = any chunk alerts), each in its own virtual environment
  under ``~/.cache/shipyard-bench`` (they pin other versions of pandas than Shipyard's), with their usage
  telemetry off; a contender that does not install or run is recorded with the reason.

Capture cost: the digits server (1 worker, pinned to core 0), ``wrk`` (pinned to core 1; an httpx loop without
it) at 64 connections for ``--seconds`` per run, capture off and at 100 % alternately (3 rounds): median
requests/s of each, and the worker's CPU time per request (from /proc), which a busy host disturbs less.
Record the machine's load average with the figures: take final ones on a quiet machine only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from cpu import CLIENT_BOUND, children_cpu  # noqa: E402

BIN = Path(sys.executable).parent
CACHE = Path.home() / ".cache" / "shipyard-bench"
DRIFTED = [f"f{i:02d}" for i in range(9)]
FEATURES = 64

_MEASURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    started = time.perf_counter()
    done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"rc": done.returncode, "seconds": seconds, "peak_mb": usage.ru_maxrss / 1024,
                      "stdout": done.stdout.decode(errors="replace")[-4000:],
                      "stderr": done.stderr.decode(errors="replace")[-2000:]}))
    """
)


def measure(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` in a wrapper process; its wall time, peak RSS, exit code and output tails."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, env={**os.environ, **(env or {})}, check=True
    )
    return json.loads(out.stdout)


# -- data ----------------------------------------------------------------------------------------
def make_table(n: int, drift: bool, seed: int) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(FEATURES):
        kind = i % 4
        if kind == 0:
            x = rng.standard_normal(n)
        elif kind == 1:
            x = rng.lognormal(0.0, 0.5, n)
        elif kind == 2:
            x = rng.uniform(-1.0, 1.0, n)
        else:
            x = rng.gamma(2.0, 1.0, n)
        if drift and i < 8:
            x = x + 0.3 * x.std()
        if drift and i == 8:
            x = (x - x.mean()) * 1.5 + x.mean()
        columns[f"f{i:02d}"] = np.round(x, 5)  # what a client sends: 5 decimals, as in the captured CSV
    return pa.table(columns)


def write_capture(table: Any, root: Path) -> int:
    import pyarrow.csv as pacsv

    sys.path.insert(0, str(ROOT / "src"))
    from shipyard.serving.capture import DirectorySink, _EventIds, _hour_of, encode_record

    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    lines = buffer.getvalue().split(b"\n")
    sink, ids = DirectorySink(root), _EventIds()
    start = 1_790_000_000 - 1_790_000_000 % 3600
    n = table.num_rows
    batch: list[bytes] = []
    hour = None
    for i in range(n):
        moment = start + i * 86400.0 / n
        if hour is not None and _hour_of(int(moment)) != hour and batch:
            sink.write(hour, batch)
            batch = []
        hour = _hour_of(int(moment))
        item = (moment, None, "text/csv", lines[i], b"application/json", b'{"predictions": [0]}')
        batch.append(encode_record(item, ids.next()) + b"\n")
    if batch and hour is not None:
        sink.write(hour, batch)
    sink.close()
    return n


def prepare(data: Path, scale: float) -> dict[str, Any]:
    import pyarrow.parquet as pq

    data.mkdir(parents=True, exist_ok=True)
    n_ref, n_cur = int(200_000 * scale), int(1_000_000 * scale)
    marker = data / f"ready-{n_ref}-{n_cur}"
    if not marker.exists():
        for path in data.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        pq.write_table(make_table(n_ref, False, 1), data / "reference.parquet", row_group_size=131_072)
        current = make_table(n_cur, True, 2)
        pq.write_table(current, data / "current.parquet", row_group_size=131_072)
        write_capture(current, data / "capture")
        marker.touch()
    size = sum(p.stat().st_size for p in (data / "capture").rglob("*.jsonl"))
    return {"reference_rows": n_ref, "current_rows": n_cur, "capture_bytes": size, "features": FEATURES}


# -- contenders ----------------------------------------------------------------------------------
def shipyard_runs(data: Path, work: Path) -> dict[str, Any]:
    shipyard = str(BIN / "shipyard")
    runs: dict[str, Any] = {}
    runs["baseline"] = measure(
        [shipyard, "monitor", "baseline", str(data / "reference.parquet"), "-o", str(work / "baseline")]
    )
    for name, source in (("check_parquet", data / "current.parquet"), ("check_capture", data / "capture")):
        out = work / name
        run = measure([shipyard, "monitor", "check", str(source), "-b", str(work / "baseline"), "-o", str(out)])
        drift = json.loads((out / "drift.json").read_text()) if (out / "drift.json").exists() else {"features": []}
        run["flagged"] = sorted(f["name"] for f in drift["features"] if f["drifted"])
        run["rows"] = drift.get("rows")
        # every violation, not only drift: the same rows against their own kind of data must raise nothing else
        # (a completeness_check per column is how issue 11's data loss showed)
        path = out / "constraint_violations.json"
        violations = json.loads(path.read_text())["violations"] if path.exists() else []
        run["violations"] = {}
        for violation in violations:
            kind = violation["constraint_check_type"]
            run["violations"][kind] = run["violations"].get(kind, 0) + 1
        stats = json.loads((out / "statistics.json").read_text()) if (out / "statistics.json").exists() else {}
        run["cells_missing"] = sum(
            f.get("numerical_statistics", f.get("string_statistics", {}))["common"]["num_missing"]
            for f in stats.get("features", [])
        )
        runs[name] = run
    return runs


EXACT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pyarrow.parquet as pq
    from scipy.stats import ks_2samp, wasserstein_distance
    ref, cur = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])
    flagged, ks_flagged = [], []
    for name in ref.column_names:
        a, b = ref.column(name).to_numpy(), cur.column(name).to_numpy()
        if wasserstein_distance(a, b) / a.std() > 0.1:
            flagged.append(name)
        if ks_2samp(a, b).pvalue < 0.05:
            ks_flagged.append(name)
    print(json.dumps({"flagged": flagged, "ks_p005_flagged": ks_flagged}))
    """
)

EVIDENTLY = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        column = config.get("column")
        value = metric.get("value")
        threshold = config.get("threshold")
        if column and isinstance(value, (int, float)) and threshold is not None:
            method = str(config.get("method", ""))
            drifted = value < threshold if "p_value" in method or "test" in method.lower() else value >= threshold
            if drifted:
                flagged.append(column)
    print(json.dumps({"flagged": sorted(set(flagged))}))
    """
)

NANNYML = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    import nannyml as nml
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    columns = list(ref.columns)
    # its defaults: 10 chunks, thresholds from the spread of the reference chunks; a feature counts as
    # flagged when any chunk of the current data alerts
    calculator = nml.UnivariateDriftCalculator(column_names=columns, continuous_methods=["jensen_shannon"])
    calculator.fit(ref)
    results = calculator.calculate(cur).filter(period="analysis").to_df()
    flagged = [c for c in columns if bool(results[(c, "jensen_shannon", "alert")].any())]
    print(json.dumps({"flagged": flagged}))
    """
)


def external(name: str, python: Path | None, script: str, data: Path, why_missing: str) -> dict[str, Any]:
    if python is None or not python.exists():
        return {"skipped": why_missing}
    # no usage telemetry (NannyML reports to a web service by default; nothing outside is reachable here)
    quiet = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    run = measure([str(python), "-c", script, str(data / "reference.parquet"), str(data / "current.parquet")], quiet)
    if run["rc"] != 0:
        return {"failed": run["stderr"][-1500:], "seconds": run["seconds"], "peak_mb": run["peak_mb"]}
    try:
        run["flagged"] = json.loads(run["stdout"].strip().splitlines()[-1])["flagged"]
    except (ValueError, IndexError, KeyError) as exc:
        run["failed"] = f"could not read its answer ({exc}): {run['stdout'][-500:]}"
    return run


def venv_python(name: str, package: str, extras: list[str]) -> tuple[Path | None, str]:
    """The interpreter of ``~/.cache/shipyard-bench/venv-NAME`` (made and installed on first use)."""
    venv = CACHE / f"venv-{name}"
    python = venv / "bin" / "python"
    if not python.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", f"import {name}; print({name}.__version__)"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", package, *extras, "pyarrow"], capture_output=True, text=True
        )
        if install.returncode != 0:
            return None, f"pip install {package} failed: {install.stderr.strip()[-800:]}"
        probe = subprocess.run(
            [str(python), "-c", f"import {name}; print({name}.__version__)"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            return None, f"{package} installed but does not import: {probe.stderr.strip()[-800:]}"
    return python, probe.stdout.strip()


# -- capture cost --------------------------------------------------------------------------------
def capture_cost(work: Path, seconds: float, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    from train import main as train

    from infra.server import start_server  # the tests' server helper: `serve` on a free port, stopped by PID

    bundle = Path(train(str(work / "digits-bundle")))
    row = json.loads((bundle / "example.json").read_text())["instances"][0]
    body = ",".join(f"{v:g}" for v in row)
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # worker CPU µs per request: steadier than req/s on a busy host
    for _ in range(rounds):
        for mode in ("off", "on"):
            env = {"SHIPYARD_ACCESS_LOG": "0", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
            if mode == "on":
                env |= {"SHIPYARD_CAPTURE_DESTINATION": str(work / "capture"), "SHIPYARD_CAPTURE_PERCENT": "100"}
            # the server on core 0, wrk on core 1 (as bench/serve.py does), when taskset is there
            pin = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
            server = start_server(bundle, work / f"server-{mode}.log", env=env, command=[*pin, str(BIN / "serve")])
            try:
                load(server.url, body, 2.0)  # warm-up
                pids = server.worker_pids()
                before = sum(_cpu_seconds(pid) for pid in pids)
                rate, requests = load(server.url, body, seconds)
                used = sum(_cpu_seconds(pid) for pid in pids) - before
                results[mode].append(rate)
                cpu[mode].append(1e6 * used / max(requests, 1))
            finally:
                server.stop()
            shutil.rmtree(work / "capture", ignore_errors=True)
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    return {
        "tool": "wrk" if shutil.which("wrk") else "httpx",
        # wrk's own CPU time over each run's wall time (1 = its whole core); the runs are refused at CLIENT_BOUND
        "client_cpu": [round(share, 3) for share in CLIENT_SHARES] if shutil.which("wrk") else None,
        "client_bound": not shutil.which("wrk") or any(share >= CLIENT_BOUND for share in CLIENT_SHARES),
        "connections": 64,
        "seconds_per_run": seconds,
        "requests_per_s": results,
        "median_off": off,
        "median_on": on,
        "cost": 1 - on / off,
        "cpu_us_per_request": cpu,
        "cpu_cost": statistics.median(cpu["on"]) / statistics.median(cpu["off"]) - 1,
    }


CLIENT_SHARES: list[float] = []  # wrk's CPU share in every capture-cost run, in order


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, body: str, seconds: float) -> tuple[float, int]:
    """Requests/s and requests answered at 64 connections for ``seconds``.

    wrk sends one fixed body (its fast path: no Lua per request); its own CPU share of its core is recorded, and
    a cost measured with a run the load generator limited is reported as not judged, never as the server's.
    """
    wrk = shutil.which("wrk")
    if wrk:
        used_before, started = children_cpu(), time.perf_counter()
        script = Path(tempfile.mkdtemp()) / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "text/csv"\n')
        pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
        out = subprocess.run(
            [*pin, wrk, "-t1", "-c64", f"-d{max(1, int(seconds))}s", "-s", str(script), f"{url}/invocations"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
        if non2xx:
            raise RuntimeError(f"the server answered errors under load: {non2xx[0]}")
        rate = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
        requests = int(next(line.split()[0] for line in out.splitlines() if " requests in " in line))
        share = (children_cpu() - used_before) / (time.perf_counter() - started)
        CLIENT_SHARES.append(share)  # a run at CLIENT_BOUND or more makes the capture cost "not judged"
        return rate, requests
    # without wrk: an httpx loop, far slower than the server; its figures are marked as the generator's
    import asyncio

    import httpx

    async def run() -> tuple[float, int]:
        done = 0
        deadline = time.perf_counter() + seconds
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    answer = await client.post(f"{url}/invocations", content=body, headers={"Content-Type": "text/csv"})
                    answer.raise_for_status()
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(64)))
            return done / (time.perf_counter() - started), done

    return asyncio.run(run())


# -- report --------------------------------------------------------------------------------------
def verdict(flagged: list[str] | None) -> str:
    if flagged is None:
        return "-"
    missed = sorted(set(DRIFTED) - set(flagged))
    false = sorted(set(flagged) - set(DRIFTED))
    if not missed and not false:
        return "exactly the 9"
    return f"{len(flagged)} flagged; missed {missed or 'none'}; false alarms {false or 'none'}"


def others(run: dict[str, Any]) -> str:
    """Violations other than drift, and cells counted missing (Shipyard's runs; '-' for the others)."""
    if "violations" not in run:
        return "-"
    counts = {k: v for k, v in run["violations"].items() if k != "baseline_drift_check"}
    listed = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
    return f"{listed}; {run['cells_missing']:,} cells missing"


def markdown(result: dict[str, Any]) -> str:
    rows = [
        ("shipyard monitor check (Parquet)", result["shipyard"]["check_parquet"]),
        ("shipyard monitor check (captured JSON Lines)", result["shipyard"]["check_capture"]),
        ("exact scipy ks_2samp + wasserstein_distance", result["exact_scipy"]),
        (f"Evidently {result['versions'].get('evidently', '?')} DataDriftPreset", result["evidently"]),
        (f"NannyML {result['versions'].get('nannyml', '?')} UnivariateDriftCalculator (JS)", result["nannyml"]),
    ]
    data = result["data"]
    lines = [
        "# Monitoring benchmark (bench/monitor.py)",
        "",
        f"{data['features']} numeric features; {data['reference_rows']:,} reference rows, "
        f"{data['current_rows']:,} current rows;",
        "f00–f07 shifted by 0.3 σ, f08 scaled × 1.5. Captured JSON Lines: "
        f"{data['current_rows']:,} records, one CSV row each, {data['capture_bytes'] / 1e6:.0f} MB in 24 hourly files.",
        "",
        f"Machine: {result['machine']}; load average before / after: {result['load_before']} / {result['load_after']}.",
        "",
        "| contender | time (s) | peak memory (MB) | features flagged | other violations |",
        "|---|---:|---:|---|---|",
    ]
    for name, run in rows:
        if "skipped" in run or "failed" in run:
            reason = (run.get("skipped") or run.get("failed") or "").replace("\n", " ")[:300]
            lines.append(f"| {name} | - | - | not measured: {reason} | - |")
        else:
            lines.append(
                f"| {name} | {run['seconds']:.1f} | {run['peak_mb']:.0f} | {verdict(run.get('flagged'))} "
                f"| {others(run)} |"
            )
    baseline = result["shipyard"]["baseline"]
    lines += [
        "",
        f"`shipyard monitor baseline` of the reference Parquet: {baseline['seconds']:.1f} s, "
        f"{baseline['peak_mb']:.0f} MB.",
    ]
    exact = result["exact_scipy"]
    if "ks_p005_flagged" in exact.get("stdout", ""):
        ks = json.loads(exact["stdout"].strip().splitlines()[-1])["ks_p005_flagged"]
        lines.append(f"Plain KS at p < 0.05 on the same data flags {len(ks)}: {verdict(ks)}.")
    capture = result.get("capture")
    if capture:

        def runs(mode: str) -> str:
            return ", ".join(f"{v:.0f}" for v in capture["requests_per_s"][mode])

        lines += [
            "",
            f"## Data capture cost ({capture['tool']}, {capture['connections']} connections, "
            f"{capture['seconds_per_run']:g} s per run, digits server with 1 worker)",
            "",
            "| capture | requests/s (runs) | median |",
            "|---|---|---:|",
            f"| off | {runs('off')} | {capture['median_off']:.0f} |",
            f"| 100 % | {runs('on')} | {capture['median_on']:.0f} |",
            "",
            f"Cost of capturing every request: {100 * capture['cost']:.1f} % of throughput (target ≤ 10 %); "
            f"worker CPU per request {statistics.median(capture['cpu_us_per_request']['off']):.0f} µs off, "
            f"{statistics.median(capture['cpu_us_per_request']['on']):.0f} µs on ({100 * capture['cpu_cost']:+.1f} %).",
            "",
            _client_line(capture),
        ]
    lines += _targets_lines(targets(result))
    return "\n".join(lines) + "\n"


def _client_line(capture: dict[str, Any]) -> str:
    shares = capture.get("client_cpu") or [0.0]
    if capture.get("client_bound"):
        who = "an httpx loop: wrk is not installed" if capture["tool"] != "wrk" else f"wrk at {max(shares):.0%}"
        return f"**The load generator ({who}) was the limit: these rates are its own, and the cost is not judged.**"
    return (
        f"The load generator was not the limit: wrk used at most {max(shares):.0%} of its core in any run "
        f"(at {CLIENT_BOUND:.0%} or more the cost would not be judged)."
    )


COST_MAX = 0.10  # capturing every request costs at most this share of throughput


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What every figure of the report must be: each Shipyard check exact, capture within its cost."""
    out: dict[str, dict[str, Any]] = {}
    for key in ("check_parquet", "check_capture"):
        run = result["shipyard"][key]
        flagged = run.get("flagged")
        others_ = {k: v for k, v in run.get("violations", {}).items() if k != "baseline_drift_check"}
        out[key] = {
            "drift exactly the 9": flagged is not None and sorted(flagged) == sorted(DRIFTED),
            "no other violation": "violations" in run and not others_,
            "no cell counted missing": run.get("cells_missing") == 0,
        }
    capture = result.get("capture")
    if capture:
        judged = not capture.get("client_bound")
        out["capture"] = {f"cost <= {COST_MAX:.0%}": (capture["cost"] <= COST_MAX) if judged else None}
    return out


def _targets_lines(checks: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["", "## Targets", ""]
    for key, entries in checks.items():
        for name, ok in entries.items():
            verdict_ = "not judged (client-bound)" if ok is None else "**PASS**" if ok else "**FAIL**"
            lines.append(f"- {key}: {name} {verdict_}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the rows; results in a temporary directory")
    parser.add_argument("--skip-capture", action="store_true", help="do not measure the cost of data capture")
    parser.add_argument("--skip-external", action="store_true", help="do not run Evidently and NannyML")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per load run")
    parser.add_argument("--data", type=Path, default=CACHE / "monitor-data", help="where the generated data is kept")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-monitor-"))
    results_dir = work if args.quick else ROOT / "bench" / "results"
    data = args.data if not args.quick else work / "data"
    load_before = round(os.getloadavg()[0], 2)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": load_before,
        "data": prepare(data, scale),
        "versions": {},
    }
    print(f"data ready: {result['data']}", flush=True)
    result["shipyard"] = shipyard_runs(data, work)
    print(
        "shipyard:",
        {k: (round(v["seconds"], 1), round(v["peak_mb"])) for k, v in result["shipyard"].items()},
        flush=True,
    )
    exact = measure([sys.executable, "-c", EXACT, str(data / "reference.parquet"), str(data / "current.parquet")])
    if exact["rc"] == 0:
        exact["flagged"] = json.loads(exact["stdout"].strip().splitlines()[-1])["flagged"]
    result["exact_scipy"] = exact
    if args.skip_external:
        result["evidently"] = result["nannyml"] = {"skipped": "--skip-external"}
    else:
        contenders = (
            # evidently 0.7.23 imports a pandas internal that pandas 3 removed; nannyml 0.13.1 imports
            # statsmodels without declaring it
            ("evidently", "evidently==0.7.23", ["pandas<3"], EVIDENTLY),
            ("nannyml", "nannyml==0.13.1", ["statsmodels"], NANNYML),
        )
        for name, package, extras, script in contenders:
            python, version_or_reason = venv_python(name, package, extras)
            if python is not None:
                result["versions"][name] = version_or_reason
            result[name] = external(name, python, script, data, version_or_reason)
            print(
                name,
                {k: v for k, v in result[name].items() if k in ("seconds", "peak_mb", "flagged", "skipped")},
                flush=True,
            )
    if not args.skip_capture:
        result["capture"] = capture_cost(work, args.seconds, rounds=3)
        print("capture:", result["capture"], flush=True)
    result["load_after"] = round(os.getloadavg()[0], 2)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "monitor.json").write_text(json.dumps(result, indent=2) + "\n")
    (results_dir / "monitor.md").write_text(markdown(result))
    print(markdown(result))
    print(f"results: {results_dir}/monitor.md")
    checks = targets(result)
    failed = [f"{key}: {name}" for key, entries in checks.items() for name, ok in entries.items() if ok is False]
    if failed:
        print(f"targets missed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
