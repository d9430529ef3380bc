"""Batch transform benchmark (issue 17): rows/s of a local transform against the model called in process.

    .venv/bin/python bench/transform.py                  # 1 M digit rows: writes bench/results/transform.{json,md}
    .venv/bin/python bench/transform.py --rows 200000    # a smaller run (say so: the file records the count)
    .venv/bin/python bench/transform.py --quick          # 50 k rows, results in a temporary directory

One CSV file of N digit rows (64 pixels each, the digits test rows cycled; ~190 bytes a line), measured in the
same run on the same file:

1. **in-process**: the model's own handler (``handler_for(bundle)``, what each server worker runs) over the
   file read in 6 MB pieces cut at newlines: decode the CSV, ``predict``, encode the answers, written to a file.
   One process, one thread: the work without HTTP, packing or a server;
2. **transform**: ``shipyard.deploy.transform.local.run_local`` against ``serve`` (the image's command, the
   same server the local target's container runs) started from the bundle with W workers: the container's
   ``/execution-parameters`` read (MaxConcurrentTransforms = W, MULTI_RECORD, its MaxPayloadInMB), the file
   cut into MultiRecord payloads, W requests in flight, the answers written in order to ``rows.csv.out``.

Both outputs are checked equal line for line. The ratio is transform rows/s ÷ in-process rows/s; the target is
≥ 0.8×. With W = 1 both sides have one core for the model (like for like); W = the machine's cores is what a
user gets by default. Each figure is the best of ``--repeats`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "examples" / "digits")]

from cpu import machine  # noqa: E402

TARGET = 0.8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2", help="server workers to measure, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="50 k rows, one repeat, a temporary results dir")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 50_000, 1
    out_dir = args.out or (
        Path(tempfile.mkdtemp(prefix="shipyard-bench-")) if args.quick else ROOT / "bench" / "results"
    )
    with tempfile.TemporaryDirectory(prefix="shipyard-transform-bench-") as tmp:
        results = run(Path(tmp), args.rows, [int(w) for w in args.workers.split(",")], args.repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "transform.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "transform.md").write_text(render(results))
    print(render(results))
    print(f"wrote {out_dir / 'transform.json'} and {out_dir / 'transform.md'}")
    return 0


def run(work: Path, rows: int, workers: list[int], repeats: int) -> dict[str, Any]:
    from train import main as train

    load_before = os.getloadavg()[0]

    bundle = Path(train(str(work / "bundle")))
    data = work / "in" / "rows.csv"
    data.parent.mkdir()
    size = write_rows(bundle, data, rows)
    print(f"{rows:,} rows, {size / 1e6:.0f} MB in {data}", file=sys.stderr)
    # interleaved (in-process, then each W, repeated) so a busy spell of the shared machine hits every side alike
    base: list[float] = []
    times: dict[int, list[float]] = {w: [] for w in workers}
    settings: dict[int, dict[str, Any]] = {}
    for _ in range(repeats):
        base.append(in_process(bundle, data, work / "inproc.out"))
        for w in workers:
            seconds, settings[w] = transform(bundle, data, work / f"out-{w}", w, work)
            times[w].append(seconds)
            if (work / f"out-{w}" / "rows.csv.out").read_bytes() != (work / "inproc.out").read_bytes():
                raise SystemExit(f"workers={w}: the transform's output differs from the in-process answers")
    best_base = min(base)
    print(f"in-process: {rows / best_base:,.0f} rows/s (runs {base})", file=sys.stderr)
    points = []
    for w in workers:
        best = min(times[w])
        points.append(
            {
                "workers": w,
                "seconds": times[w],
                "rows_per_s": rows / best,
                "ratio": best_base / best,
                "settings": settings[w],
                "meets_target": best_base / best >= TARGET,
            }
        )
        print(f"transform W={w}: {rows / best:,.0f} rows/s, {best_base / best:.2f}× in-process", file=sys.stderr)
    return {
        "rows": rows,
        "bytes": size,
        "in_process": {"seconds": base, "rows_per_s": rows / best_base},
        "transform": points,
        "target": TARGET,
        "machine": machine(load_before),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_rows(bundle: Path, path: Path, rows: int) -> int:
    import orjson

    example = orjson.loads((bundle / "example.json").read_bytes())["instances"]
    from sklearn.datasets import load_digits

    pixels = load_digits().data  # 1,797 rows; the file cycles them
    lines = [",".join(str(float(v)) for v in row).encode() + b"\n" for row in pixels.tolist()]
    assert len(example[0]) == 64
    with path.open("wb") as sink:
        full, rest = divmod(rows, len(lines))
        block = b"".join(lines)
        for _ in range(full):
            sink.write(block)
        sink.write(b"".join(lines[:rest]))
    return path.stat().st_size


def in_process(bundle: Path, data: Path, out: Path) -> float:
    """The server's handler in this process over 6 MB pieces; seconds (loading the model not counted)."""
    from shipyard.bundle import Bundle
    from shipyard.config import ServerConfig
    from shipyard.deploy.transform.engine import _fast_batches
    from shipyard.handler import handler_for

    handler = handler_for(Bundle.open(bundle), ServerConfig.from_env())
    handler.load()
    started = time.perf_counter()
    with out.open("wb") as sink:
        for batch in _fast_batches(data, 6):
            prepared = handler.prepare(batch.body, "text/csv", "text/csv")
            body, _ = handler.finish(handler.predict(prepared.inputs), prepared)
            sink.write(body if body.endswith(b"\n") else body + b"\n")
    return time.perf_counter() - started


def transform(bundle: Path, data: Path, out: Path, workers: int, work: Path) -> tuple[float, dict[str, Any]]:
    """``run_local`` against ``serve`` with ``workers``; the transform's own seconds (server start not counted)."""
    from infra.server import start_server
    from shipyard.deploy.transform import TransformOptions
    from shipyard.deploy.transform.local import run_local

    server = start_server(
        bundle,
        work / f"server-{workers}.log",
        env={"SAGEMAKER_MODEL_SERVER_WORKERS": str(workers), "SHIPYARD_ACCESS_LOG": "0"},
    )
    try:
        result = run_local(TransformOptions(server.url, str(data.parent), str(out)))
    finally:
        server.stop()
    if result.failed:
        raise SystemExit(f"the transform failed: {result.failed}")
    s = result.settings
    return result.seconds, {
        "max_concurrent": s.max_concurrent,
        "strategy": s.strategy,
        "max_payload_mb": s.max_payload_mb,
        "requests": result.requests,
    }


def render(results: dict[str, Any]) -> str:
    base = results["in_process"]["rows_per_s"]
    lines = [
        "# Batch transform: a local transform against the model in process",
        "",
        f"{results['rows']:,} digit rows, one CSV file of {results['bytes'] / 1e6:.0f} MB; "
        f"{results['when']}; {results['machine']['affinity']} usable cores (shared with other work: load "
        f"{results['machine']['load_before']:.2f} before the run, {results['machine']['load_after']:.2f} after). "
        f"Best of {len(results['in_process']['seconds'])} runs each, interleaved.",
        "",
        "| run | settings | rows/s | × in-process | target ≥ 0.8× |",
        "|---|---|---:|---:|---|",
        f"| in-process (the handler, one thread) | 6 MB pieces | {base:,.0f} | 1.00 | |",
    ]
    for p in results["transform"]:
        s = p["settings"]
        lines.append(
            f"| transform, serve with {p['workers']} worker(s) | {s['strategy']}, {s['max_payload_mb']} MB, "
            f"{s['max_concurrent']} in flight, {s['requests']} requests | {p['rows_per_s']:,.0f} | {p['ratio']:.2f} | "
            f"{'PASS' if p['meets_target'] else 'FAIL'} |"
        )
    lines += [
        "",
        "Reproduce: `.venv/bin/python bench/transform.py --rows " + str(results["rows"]) + "`. The transform runs "
        "against `serve`, the image's own command, not inside the container (the same server; the container adds "
        "only its port forwarding). Both outputs are checked equal byte for byte.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
