"""Bias metrics benchmark (issue 18): Shipyard's ``bias_analysis`` against smclarify 0.5's ``bias_report``.

    PYTHONPATH=src .venv/bin/python bench/bias.py            # 1 M rows: bench/results/bias.{json,md}
    PYTHONPATH=src .venv/bin/python bench/bias.py --quick    # 100 k rows, results in a temporary directory

The data: ``--rows`` rows × 20 float features, a text facet with 5 values (one vs all: 5 groups), a text group
variable (4 values, for CDDL/CDDPL), a 0/1 label and 0/1 predictions, in one Parquet file. Each side runs in a
subprocess of its own (smclarify from ``.clarify-ref/``, made by scripts/clarify-ref.sh), which reads the
columns it needs from the file and computes every pre-training metric and every post-training metric but FT;
its wall time and peak RSS (``os.wait4``'s ``ru_maxrss``: the child's whole life, imports included) are
recorded. FT (k-nearest neighbours on the 20 features, the same scikit-learn call on both sides) is timed
apart on ``--ft-rows`` rows, smclarify's being far slower (a Python loop over the rows). Each figure is the
best of ``--repeats`` runs, the two sides interleaved (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import machine  # noqa: E402

FEATURES = 20
VALUES = ["a", "b", "c", "d", "e"]
TARGET_TIME, TARGET_MEMORY = 0.5, 1.0  # Shipyard's time ≤ 0.5× smclarify's, its peak memory ≤ smclarify's
NEEDED = ["facet", "region", "y", "pred"]

# the child processes: python -c CHILD <side> <parquet> <ft 0|1>
CHILD = r"""
import json, sys, time
side, path, ft = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
start = time.perf_counter()
if side == "shipyard":
    import pyarrow.parquet as pq
    from shipyard.monitor.bias import bias_analysis
    from shipyard.monitor.columns import table_columns
    table = pq.read_table(path, columns=None if ft else ["facet", "region", "y", "pred"])
    columns = table_columns(table)
    if ft:
        columns.pop("region")
    loaded = time.perf_counter()
    document = bias_analysis(columns, label="y", facets=["facet"], predicted="pred",
                             group_by=None if ft else "region", pre_training=not ft, flip_test=ft)
    section = document["post_training_bias_metrics"]["facets"]["facet"]
    values = {e["value_or_threshold"]: {m["name"]: m["value"] for m in e["metrics"]} for e in section}
else:
    import logging, warnings
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    import pandas as pd
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report
    frame = pd.read_parquet(path, columns=None if ft else ["facet", "region", "y", "pred"])
    for name in ("facet", "region"):
        if name in frame:
            frame[name] = frame[name].astype(object)
    if ft:
        frame = frame.drop(columns=["region"])
    loaded = time.perf_counter()
    group = None if ft else frame["region"]
    post = ["FT"] if ft else ["AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "GE", "RD", "SD", "TE"]
    if not ft:
        bias_report(frame, FacetColumn("facet"), LabelColumn("y", frame["y"], [1]), StageType.PRE_TRAINING,
                    group_variable=group)
    report = bias_report(frame, FacetColumn("facet"), LabelColumn("y", frame["y"], [1]), StageType.POST_TRAINING,
                         LabelColumn("pred", frame["pred"], None), metrics=post, group_variable=group)
    values = {e["value_or_threshold"]: {m["name"]: m["value"] for m in e["metrics"]} for e in report}
done = time.perf_counter()
json.dump({"load_s": loaded - start, "compute_s": done - loaded, "values": values}, sys.stdout)
"""


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    facet = rng.choice(np.array(VALUES, dtype=object), rows, p=[0.4, 0.25, 0.15, 0.12, 0.08])
    shift = {v: 0.1 * i for i, v in enumerate(VALUES)}
    rate = 0.3 + np.vectorize(shift.get)(facet)
    y = (rng.random(rows) < rate).astype(np.int64)
    pred = np.where(rng.random(rows) < 0.85, y, 1 - y)
    columns: dict[str, Any] = {f"x{i}": rng.normal(size=rows) for i in range(FEATURES)}
    columns |= {"facet": facet, "region": rng.choice(np.array(["n", "s", "e", "w"], dtype=object), rows)}
    columns |= {"y": y, "pred": pred}
    pq.write_table(pa.table(columns), path)


def run_side(side: str, path: Path, ft: bool) -> dict[str, Any]:
    """One child: its figures, wall time and peak RSS (MB). The caller is a fresh interpreter (see
    :func:`measure`), so RUSAGE_CHILDREN's maxrss is this one child's."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(ROOT / (".clarify-ref" if side == "smclarify" else "src"))}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, side, str(path), "1" if ft else "0"], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{side} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["wall_s"] = wall
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def measure(side: str, path: Path, ft: bool) -> dict[str, Any]:
    """``side`` run from a fresh parent, so RUSAGE_CHILDREN holds that one child only."""
    done = subprocess.run(
        [sys.executable, __file__, "--child-of", side, "--data", str(path), *(["--ft"] if ft else [])],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _agree(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    """The largest difference between the two sides' values (both must name the same groups and metrics)."""
    worst = 0.0
    for group, metrics in theirs.items():
        for name, value in metrics.items():
            mine = ours[group][name]
            if isinstance(value, (int, float)) and isinstance(mine, (int, float)):
                worst = max(worst, abs(mine - value))
            elif mine != value:
                return float("inf")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ft-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child-of", choices=["shipyard", "smclarify"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--ft", action="store_true")
    args = parser.parse_args()
    if args.child_of:
        json.dump(run_side(args.child_of, args.data, args.ft), sys.stdout)
        return 0
    if args.quick:
        args.rows, args.ft_rows, args.repeats = 100_000, 5_000, 1
    if not (ROOT / ".clarify-ref" / "smclarify").is_dir():
        subprocess.run(["bash", str(ROOT / "scripts" / "clarify-ref.sh")], check=True)
    out_dir = Path(tempfile.mkdtemp(prefix="shipyard-bench-bias-")) if args.quick else ROOT / "bench" / "results"
    work = Path(tempfile.mkdtemp(prefix="shipyard-bias-"))
    load_before = os.getloadavg()[0]
    make_data(work / "data.parquet", args.rows)
    make_data(work / "ft.parquet", args.ft_rows, seed=1)
    results: dict[str, Any] = {"rows": args.rows, "ft_rows": args.ft_rows, "features": FEATURES, "facet_values": 5}
    for kind, path, ft in (("metrics", work / "data.parquet", False), ("flip_test", work / "ft.parquet", True)):
        runs: dict[str, list[dict[str, Any]]] = {"shipyard": [], "smclarify": []}
        for _ in range(args.repeats):
            for side in runs:
                runs[side].append(measure(side, path, ft))
                print(f"{kind} {side}: {runs[side][-1]['wall_s']:.2f} s", file=sys.stderr)
        best = {side: min(r, key=lambda x: x["wall_s"]) for side, r in runs.items()}
        results[kind] = {
            side: {
                "wall_s": b["wall_s"],
                "load_s": b["load_s"],
                "compute_s": b["compute_s"],
                "peak_rss_mb": min(x["peak_rss_mb"] for x in runs[side]),
                "all_wall_s": [x["wall_s"] for x in runs[side]],
            }
            for side, b in best.items()
        }
        ours, theirs = best["shipyard"], best["smclarify"]
        results[kind]["time_ratio"] = ours["wall_s"] / theirs["wall_s"]
        results[kind]["memory_ratio"] = (
            results[kind]["shipyard"]["peak_rss_mb"] / results[kind]["smclarify"]["peak_rss_mb"]
        )
        results[kind]["largest_difference"] = _agree(ours["values"], theirs["values"])
    metrics = results["metrics"]
    results["meets_target"] = metrics["time_ratio"] <= TARGET_TIME and metrics["memory_ratio"] <= TARGET_MEMORY
    results["target"] = {"time_ratio": TARGET_TIME, "memory_ratio": TARGET_MEMORY}
    results["machine"] = machine(load_before)
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bias.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "bias.md").write_text(markdown(results))
    print(f"results: {out_dir}/bias.json, bias.md", file=sys.stderr)
    return 0


def markdown(results: dict[str, Any]) -> str:
    m, f, machine = results["metrics"], results["flip_test"], results["machine"]
    rows = [
        "| figure | shipyard | smclarify 0.5 | ratio |",
        "|---|---|---|---|",
        f"| pre + post metrics (no FT), wall (s) | {m['shipyard']['wall_s']:.2f} | {m['smclarify']['wall_s']:.2f} "
        f"| {m['time_ratio']:.3f} |",
        f"| … of it importing and reading the file (s) | {m['shipyard']['load_s']:.2f} | "
        f"{m['smclarify']['load_s']:.2f} | |",
        f"| … of it computing (s) | {m['shipyard']['compute_s']:.2f} | {m['smclarify']['compute_s']:.2f} | |",
        f"| peak RSS of the process (MB) | {m['shipyard']['peak_rss_mb']:.0f} | {m['smclarify']['peak_rss_mb']:.0f} "
        f"| {m['memory_ratio']:.3f} |",
        f"| FT on {results['ft_rows']:,} rows, wall (s) | {f['shipyard']['wall_s']:.2f} | "
        f"{f['smclarify']['wall_s']:.2f} | {f['time_ratio']:.3f} |",
        f"| FT peak RSS (MB) | {f['shipyard']['peak_rss_mb']:.0f} | {f['smclarify']['peak_rss_mb']:.0f} "
        f"| {f['memory_ratio']:.3f} |",
    ]
    return "\n".join(
        [
            "# Bias metrics benchmark (bench/bias.py)",
            "",
            f"{results['rows']:,} rows × {results['features']} float features, a text facet with 5 values (one vs "
            "all), a text group variable (4 values), 0/1 labels and predictions, in Parquet. Each side is a "
            "subprocess of its own that reads the columns it needs and computes the 8 pre-training metrics and "
            "the 12 post-training metrics but FT for each of the 5 groups; FT (20 features) timed apart. Best of "
            f"the runs, sides interleaved. Largest difference between the two sides' values: "
            f"{m['largest_difference']:.3g} (metrics), {f['largest_difference']:.3g} (FT).",
            "",
            *rows,
            "",
            f"Target: time ≤ {results['target']['time_ratio']}× smclarify's, peak memory ≤ smclarify's: "
            f"{'met' if results['meets_target'] else 'NOT met'}.",
            "",
            f"Machine: {machine['cpu']}, {machine['affinity']} usable cores (shared with other work: load "
            f"{machine['load_before']:.2f} before, {machine['load_after']:.2f} after), Python {machine['python']}; "
            f"{results['when']}.",
            "",
            "Reproduce: `PYTHONPATH=src .venv/bin/python bench/bias.py` (smclarify from `.clarify-ref/`, "
            "`bash scripts/clarify-ref.sh`).",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
