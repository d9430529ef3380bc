"""The serving benchmark's arithmetic and report: the machine, the issue's three targets, the Markdown page."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from cpu import CLIENT_BOUND

__all__ = ["machine_info", "render_markdown", "targets"]


PACKAGES = (
    "shipyard",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
    "numpy",
    "scikit-learn",
    "prometheus-client",
    "flask",
    "gunicorn",
)
LABELS = {
    "floor": "floor: constant-answer ASGI app, uvicorn + httptools + uvloop",
    "tutorial": "tutorial: Flask + gunicorn (1 sync worker)",
    "shipyard": "Shipyard `serve`, 1 worker, access log off",
    "shipyard-log": "Shipyard `serve`, 1 worker, access log on",
    "shipyard-inworker": "Shipyard `serve`, 1 worker, access log off, model in the worker (SHIPYARD_MODEL_PROCESS=0)",
}
PROCESS_COST_MAX = 0.10  # the model process may cost at most 10 % of c=64 throughput against the model in the worker
THROUGHPUT_MIN = 0.5  # c=64 req/s at least half the floor's
LATENCY_SLACK_MS = 0.25  # c=1 p50 at most floor p50 + predict(batch 1) + this
TAIL_MAX = 3.0  # c=64 p99 at most 3 × p50


def machine_info(server_core: int, load_core: int, wrk: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True, cwd=root)
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "server_core": server_core,
        "load_core": load_core,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": versions,
        "wrk": wrk_version.strip(),
        "git_commit": commit.stdout.strip() + ("+dirty src" if dirty.stdout.strip() else ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's three targets for each model server, against the floor measured in the same run."""
    servers = results["servers"]
    floor = servers.get("floor", {}).get("points", {})
    predict_ms = results["compute"]["batch_1"]["us_per_call"] / 1000
    out: dict[str, Any] = {}
    for name in ("shipyard", "shipyard-log", "shipyard-inworker", "tutorial"):
        points = servers.get(name, {}).get("points", {})
        entry: dict[str, Any] = {}
        if "64" in points and "64" in floor:
            ratio = points["64"]["rps"] / floor["64"]["rps"]
            entry["throughput"] = {"ratio": ratio, "target": f">= {THROUGHPUT_MIN}", "pass": ratio >= THROUGHPUT_MIN}
            # a ratio against a floor the client could not drive to its limit flatters the server: not judged
            bound = [n for n, pts in ((name, points), ("floor", floor)) if pts["64"].get("client_bound")]
            if bound:
                entry["throughput"] |= {"pass": False, "client_bound": bound}
        if "1" in points and "1" in floor:
            bound = floor["1"]["p50_ms"] + predict_ms + LATENCY_SLACK_MS
            p50 = points["1"]["p50_ms"]
            entry["latency"] = {
                "p50_ms": p50,
                "bound_ms": bound,
                "floor_p50_ms": floor["1"]["p50_ms"],
                "predict_ms": predict_ms,
                "slack_ms": LATENCY_SLACK_MS,
                "pass": p50 <= bound,
            }
        if "64" in points:
            tail = points["64"]["p99_ms"] / points["64"]["p50_ms"]
            entry["tail"] = {"ratio": tail, "target": f"<= {TAIL_MAX}", "pass": tail <= TAIL_MAX}
        if entry:
            out[name] = entry
    inworker = servers.get("shipyard-inworker", {}).get("points", {})
    process = servers.get("shipyard", {}).get("points", {})
    if "64" in inworker and "64" in process:
        cost = 1 - process["64"]["rps"] / inworker["64"]["rps"]
        out.setdefault("shipyard", {})["process_cost"] = {
            "cost": cost,
            "rps_model_process": process["64"]["rps"],
            "rps_in_worker": inworker["64"]["rps"],
            "target": f"<= {PROCESS_COST_MAX}",
            "pass": cost <= PROCESS_COST_MAX,
        }
    return out


def _client_summary(results: dict[str, Any]) -> str:
    points = [(name, c, p) for name, server in results["servers"].items() for c, p in server["points"].items()]
    if not points:
        return ""
    name, c, busiest = max(points, key=lambda item: item[2]["client_busy"])
    bound = [f"{n} c={cc}" for n, cc, p in points if p["client_bound"]]
    if bound:
        return f"**Client-bound points: {', '.join(bound)}**: their figures are the load generator's, not the server's."
    at_64 = [(n, p["server_cpu"]) for n, cc, p in points if cc == "64"]
    saturated = all(share >= CLIENT_BOUND for _, share in at_64)
    servers = (
        "every server's core was saturated at c=64 (server CPU above)"
        if at_64 and saturated
        else "not every server saturated its core at c=64: "
        + ", ".join(f"{LABELS.get(n, n).split(':')[0]} {share:.0%}" for n, share in at_64 if share < CLIENT_BOUND)
    )
    return (
        f"The load generator was not the limit: wrk used at most {busiest['client_busy']:.0%} of its core "
        f"({LABELS.get(name, name).split(':')[0]} at c={c}, {busiest['rps']:,.0f} req/s); {servers}."
    )


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def render_markdown(results: dict[str, Any]) -> str:
    m, s, comp = results["machine"], results["settings"], results["compute"]
    lines = ["# Serving benchmark (issue 3)", ""]
    if m["load_before"][0] >= m.get("max_load", 0.5):
        lines += [
            f"> **Not a quiet machine**: the 1-minute load average was {m['load_before'][0]:.2f} when the run "
            "started, so other processes shared the two cores. Treat these figures as a trial run, not as final.",
            "",
        ]
    lines += [
        f"Run {m['date']} on {m['cpu']}, {m['cores']} cores (server pinned to core {m['server_core']}, wrk to core "
        f"{m['load_core']}), Linux {m['kernel']}, Python {m['python']}, commit {m['git_commit']}. "
        f"Load average before: {', '.join(f'{x:.2f}' for x in m['load_before'])}.",
        "",
        f"Model A: LogisticRegression on digits, one 64-float row per request as JSON "
        f'(`{{"instances": [[...]]}}`, {s["body_bytes"]} bytes). wrk, 1 thread, connections = concurrency, '
        "one fixed body on wrk's fast path (no Lua per request), "
        f"{s['duration_s']:g} s per point after {s['warmup_s']:g} s of warm-up at c=64; every server's answers to "
        f"{s.get('checked_bodies', 32)} distinct rows are checked before and after. "
        "Reproduce: `.venv/bin/python bench/serve.py`.",
        "",
        "## In-process compute floor (`model.predict`, pinned to the server core)",
        "",
        "| batch | µs per call | µs per row |",
        "|---:|---:|---:|",
    ]
    for batch in (1, 64):
        c = comp[f"batch_{batch}"]
        lines.append(f"| {batch} | {c['us_per_call']:.1f} | {c['us_per_row']:.2f} |")
    lines += [
        "",
        "## HTTP",
        "",
        "| server | c | req/s | p50 ms | p99 ms | p99/p50 | errors | server CPU | wrk CPU | answers checked |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, server in results["servers"].items():
        checked = sum(c["sent"] for c in server["check"])
        wrong = sum(c["wrong"] for c in server["check"])
        verdict = f"{checked - wrong}/{checked} right" if name != "floor" else f"{checked - wrong}/{checked} 200"
        for c, p in server["points"].items():
            client = f"{p['client_busy']:.0%}" + (" **client-bound**" if p["client_bound"] else "")
            lines.append(
                f"| {LABELS.get(name, name)} | {c} | {p['rps']:,.0f} | {p['p50_ms']:.3f} | {p['p99_ms']:.3f} | "
                f"{p['p99_ms'] / p['p50_ms']:.2f} | {p['errors']} | {p['server_cpu']:.0%} | {client} | {verdict} |"
            )
    lines += ["", "## Targets", ""]
    for name, entry in results["targets"].items():
        lines.append(
            f"**{LABELS.get(name, name)}**"
            + (" (for comparison; the targets are Shipyard's)" if name == "tutorial" else "")
        )
        lines.append("")
        if "throughput" in entry:
            t = entry["throughput"]
            judged = (
                f"not judged: the client was the limit for {', '.join(t['client_bound'])}"
                if t.get("client_bound")
                else _verdict(t["pass"])
            )
            lines.append(f"- c=64 throughput / floor's: {t['ratio']:.3f} (target ≥ {THROUGHPUT_MIN}) {judged}")
        if "latency" in entry:
            t = entry["latency"]
            lines.append(
                f"- c=1 p50 {t['p50_ms']:.3f} ms ≤ floor p50 {t['floor_p50_ms']:.3f} + predict "
                f"{t['predict_ms']:.3f} + {t['slack_ms']} = {t['bound_ms']:.3f} ms {_verdict(t['pass'])}"
            )
        if "tail" in entry:
            t = entry["tail"]
            lines.append(f"- c=64 p99 / p50: {t['ratio']:.2f} (target ≤ {TAIL_MAX}) {_verdict(t['pass'])}")
        if "process_cost" in entry:
            t = entry["process_cost"]
            lines.append(
                f"- the model process's cost at c=64: {t['rps_model_process']:,.0f} req/s against "
                f"{t['rps_in_worker']:,.0f} with the model in the worker, {t['cost']:.1%} "
                f"(target ≤ {PROCESS_COST_MAX:.0%}) {_verdict(t['pass'])}"
            )
        lines.append("")
    lines += [
        "## Machine",
        "",
        f"- CPU: {m['cpu']} × {m['cores']}, {m['memory_gib']} GiB",
        f"- load average before / after: {', '.join(f'{x:.2f}' for x in m['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in m['load_after'])} (the run itself loads both cores)",
        f"- {m['wrk']}",
        "- " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        "",
        "\"server CPU\" is the CPU time of the server's processes over the point's wall time (1 = a full core):",
        "below 100% at high concurrency means something else shared the core or the load generator limited the run.",
        "\"wrk CPU\" is the load generator's own CPU time over the point's wall time (1 = its whole core). A point at "
        f"{s.get('client_bound_at', 0.9):.0%} or more is marked client-bound: it measured wrk, not the server.",
        "",
        _client_summary(results),
        "",
    ]
    return "\n".join(lines)
