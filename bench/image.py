"""Image benchmark (issues 4 and 19): Shipyard's images against the one a tutorial reader writes by hand.

    .venv/bin/python bench/image.py                 # writes bench/results/image.{json,md}
    .venv/bin/python bench/image.py --quick         # 2 cold starts each, results in a temporary directory
    .venv/bin/python bench/image.py --prune         # first remove dangling images (what bench/results used)

The images serve the same digits model (examples/digits/train.py) on the same base image (default: the
debootstrap base of tests/infra/base_image.py, built if missing), from the same host-resolved wheelhouse
(the only change to the tutorial: `pip install --no-index --find-links` from a mounted wheelhouse, because
builds here cannot reach PyPI). Measured in one run with Podman:

* size (``podman image inspect``);
* cold start: ``podman run IMAGE serve`` → first ``/ping`` 200 → first correct prediction (median of 5,
  the images alternating, after one discarded start of each);
* cold build (``--no-cache``, wheels already on the host), warm build (nothing changed), and the rebuild
  after a change to the handler code only (median of 5, a new edit each time), each as the user runs it
  (``podman build`` for the tutorial, ``shipyard build`` for Shipyard: the CLI, end to end).

**Shipyard compiled** (issue 19) is the same bundle built with ``shipyard build BUNDLE --compile onnx`` (the CLI
end to end: it converts a copy in the build context with skl2onnx and serves it with onnxruntime, so the image
has neither scikit-learn nor SciPy; the saved bundle is left as it was). Its predictions are checked in process:
10,000 generated rows in the digits range 0..16 (half integers, half uniform floats) through both forms, each
loaded by its flavor — labels (``predict``) must all be equal; the largest probability error
(``predict_proba``) is reported.

A further image, a diagnostic, serves the same model as a numpy-only callable from the same server: the
difference between its cold start and Shipyard's is the scikit-learn import both native images pay.

Targets: Shipyard's image no larger than the tutorial's; its cold start to the first prediction at most
0.7 × the tutorial's; a code-only rebuild within 2 s. Compiled: size at most 0.7 × the tutorial's, cold start
to the first correct prediction at most 0.5 × the tutorial's, and the same labels as native on 10,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "digits"))
sys.path.append(str(ROOT / "bench"))  # after examples/digits: its train.py is not bench/train.py
from compiled import compare, digits_rows, verdict  # noqa: E402
from cpu import cpu_name  # noqa: E402

TUTORIAL_APP = """\
import flask
import joblib
import numpy as np

app = flask.Flask(__name__)
model = joblib.load("/app/model.joblib")


@app.route("/ping")
def ping():
    return "", 200


@app.route("/invocations", methods=["POST"])
def invocations():
    data = flask.request.get_json()
    predictions = model.predict(np.array(data["instances"]))
    return flask.jsonify({"predictions": predictions.tolist()})
"""

TUTORIAL_SERVE = """\
#!/bin/sh
exec gunicorn --bind 0.0.0.0:8080 --workers 2 --chdir /app app:app
"""

TUTORIAL_DOCKERFILE = """\
FROM {base}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt .
RUN --mount=type=bind,from=wheelhouse,target=/wheelhouse \\
    pip install --no-cache-dir --no-index --find-links=/wheelhouse -r requirements.txt
COPY model.joblib .
COPY serve /usr/local/bin/serve
COPY app.py .
EXPOSE 8080
ENTRYPOINT []
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=None, help="base image (default: the debootstrap bookworm base)")
    parser.add_argument("--quick", action="store_true", help="2 cold starts each; results in a temp dir")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="first remove dangling images (`podman image prune`): the engine checks its layer cache against "
        "every image in the store, so builds slow down as it fills; pruning makes runs comparable",
    )
    args = parser.parse_args()
    if args.prune:
        subprocess.run(["podman", "image", "prune", "--force"], capture_output=True, check=False)
    runs = 2 if args.quick else 5
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    out = Path(tempfile.mkdtemp(prefix="bench-image-")) if args.quick else args.out

    from train import main as train

    from infra.base_image import ensure_base_image
    from shipyard.image.engine import detect
    from shipyard.image.wheelhouse import resolve

    base = args.base or ensure_base_image()
    engine = detect("podman")
    work = Path(tempfile.mkdtemp(prefix="bench-image-work-"))
    bundle = train(str(work / "digits-bundle"))
    example = json.loads((bundle / "example.json").read_text())
    target = engine.probe_python(base, "linux/amd64")

    # -- the tutorial image's context and wheelhouse (resolved before any timing, like Shipyard's) --
    tutorial = work / "tutorial"
    tutorial.mkdir()
    requirements = [*(bundle / "code" / "requirements.txt").read_text().split(), "flask", "gunicorn"]
    (tutorial / "requirements.txt").write_text("\n".join(requirements) + "\n")
    lock = resolve(requirements, target)
    wheelhouse = work / "tutorial-wheels"
    lock.link_into(wheelhouse)
    shutil.copy(bundle / "model" / "model.joblib", tutorial / "model.joblib")
    (tutorial / "app.py").write_text(TUTORIAL_APP)
    (tutorial / "serve").write_text(TUTORIAL_SERVE)
    (tutorial / "serve").chmod(0o755)
    (tutorial / "Dockerfile").write_text(TUTORIAL_DOCKERFILE.format(base=base))
    tutorial_tag = "localhost/bench/tutorial:1"
    shipyard_tag = "localhost/bench/shipyard:1"

    def build_tutorial(no_cache: bool = False) -> float:
        command = [
            "podman",
            "build",
            "--layers",
            "-q",
            "-t",
            tutorial_tag,
            "--build-context",
            f"wheelhouse={wheelhouse}",
        ]
        return _timed([*command, *(["--no-cache"] if no_cache else []), str(tutorial)])

    def shipyard_build(source: Path, tag: str) -> list[str]:
        cli = str(Path(sys.executable).parent / "shipyard")
        return [cli, "build", str(source), "-t", tag, "--base", base, "--engine", "podman"]

    shipyard = shipyard_build(bundle, shipyard_tag)
    # Warm the host-side caches (wheelhouse, Shipyard's wheel, the base's Python) once, outside the timings.
    _timed(shipyard)
    results: dict[str, dict[str, Any]] = {"tutorial": {}, "shipyard": {}}
    results["tutorial"]["cold_build_s"] = build_tutorial(no_cache=True)
    results["shipyard"]["cold_build_s"] = _timed([*shipyard, "--no-cache"])
    results["tutorial"]["warm_build_s"] = build_tutorial()
    results["shipyard"]["warm_build_s"] = _timed(shipyard)
    rebuilds: dict[str, list[float]] = {"tutorial": [], "shipyard": []}
    for change in range(runs):  # each time a new edit of the handler code, then the rebuild the user runs
        with (tutorial / "app.py").open("a") as handle:
            handle.write(f"# handler-code change {change}\n")
        rebuilds["tutorial"].append(build_tutorial())
        (bundle / "code" / "handler_note.py").write_text(f"# handler-code change {change}\n")
        rebuilds["shipyard"].append(_timed(shipyard))
    for name, times in rebuilds.items():
        results[name]["code_rebuild_s"] = round(statistics.median(times), 3)
        results[name]["code_rebuild_runs_s"] = times
    for name, tag in (("tutorial", tutorial_tag), ("shipyard", shipyard_tag)):
        info = engine.inspect_image(tag)
        results[name]["size_mb"] = round(info.size / 1e6, 1)
        results[name]["layers"] = info.layers
    # A diagnostic, not a contender: the same server and image layout serving the same model as a numpy-only
    # callable (the argmax of X·coefᵀ + b, checked equal to scikit-learn's predictions), so no scikit-learn
    # import at start. The gap between it and Shipyard's digits image is what importing scikit-learn costs.
    floor_tag = "localhost/bench/shipyard-numpy:1"
    floor_bundle = _numpy_twin(bundle, work / "digits-numpy")
    _timed(shipyard_build(floor_bundle, floor_tag))
    results["server floor"] = {"size_mb": round(engine.inspect_image(floor_tag).size / 1e6, 1)}
    compiled_tag = "localhost/bench/shipyard-compiled:1"
    results["shipyard compiled"] = _build_compiled(bundle, shipyard_build, compiled_tag, work, example)
    info = engine.inspect_image(compiled_tag)
    results["shipyard compiled"]["size_mb"] = round(info.size / 1e6, 1)
    results["shipyard compiled"]["layers"] = info.layers
    results["shipyard compiled"]["labels"] = {k: v for k, v in info.labels.items() if k.startswith("dev.shipyard")}
    # Cold starts alternate between the images, after one discarded start of each (the page cache then
    # holds every image's files): no image is measured while the machine settles from the builds.
    tags = {
        "tutorial": tutorial_tag,
        "shipyard": shipyard_tag,
        "shipyard compiled": compiled_tag,
        "server floor": floor_tag,
    }
    for tag in tags.values():
        _cold_start(tag, example)
    pings: dict[str, list[float]] = {name: [] for name in tags}
    predictions: dict[str, list[float]] = {name: [] for name in tags}
    for _ in range(runs):
        for name, tag in tags.items():
            ping, first = _cold_start(tag, example)
            pings[name].append(ping)
            predictions[name].append(first)
    for name in tags:
        results[name]["cold_start_ping_s"] = round(statistics.median(pings[name]), 3)
        results[name]["cold_start_prediction_s"] = round(statistics.median(predictions[name]), 3)
        results[name]["cold_start_prediction_runs_s"] = [round(x, 3) for x in predictions[name]]
    print("predictions: 10,000 generated rows through both forms, in process", file=sys.stderr)
    forms = compare(bundle, results["shipyard compiled"].pop("compiled_bundle"), digits_rows(10_000))
    results["shipyard compiled"]["predictions"] = {**verdict(forms), "detail": forms}
    ratios, targets = _targets(results)
    document = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu_name(),
            "load_average_at_start": load_at_start,
            "python": platform.python_version(),
            "podman": _podman_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "images_in_store": _image_count(),  # the engine's cache lookups get slower as the store grows
        },
        "base": base,
        "runs": runs,
        "pruned": args.prune,
        "results": results,
        "ratios": ratios,
        "targets": targets,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "image.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "image.md").write_text(_markdown(document))
    print(_markdown(document))
    print(f"written to {out}/image.json and image.md")
    for tag in (tutorial_tag, shipyard_tag, floor_tag, compiled_tag):
        engine.remove_image(tag)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _targets(results: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, bool]]:
    """The ratios against the tutorial image and whether each target is met (issue 4's, then issue 19's)."""
    t, s = results["tutorial"], results["shipyard"]
    ratios = {
        "size": round(s["size_mb"] / t["size_mb"], 3),
        "cold_start_prediction": round(s["cold_start_prediction_s"] / t["cold_start_prediction_s"], 3),
    }
    targets = {
        "size <= tutorial": s["size_mb"] <= t["size_mb"],
        "cold start <= 0.7 x tutorial": ratios["cold_start_prediction"] <= 0.7,
        "code-only rebuild <= 2 s": s["code_rebuild_s"] <= 2.0,
    }
    c = results.get("shipyard compiled")
    if c is not None:
        ratios["compiled_size"] = round(c["size_mb"] / t["size_mb"], 3)
        ratios["compiled_cold_start_prediction"] = round(c["cold_start_prediction_s"] / t["cold_start_prediction_s"], 3)
        targets["compiled size <= 0.7 x tutorial"] = ratios["compiled_size"] <= 0.7
        targets["compiled cold start <= 0.5 x tutorial"] = ratios["compiled_cold_start_prediction"] <= 0.5
        targets["compiled labels = native on 10,000 rows"] = bool(c["predictions"]["pass"])
    return ratios, targets


def _build_compiled(bundle: Path, build: Any, tag: str, work: Path, example: dict[str, Any]) -> dict[str, Any]:
    """Build the compiled image with ``shipyard build BUNDLE --compile onnx``; if the CLI cannot, save a second
    bundle from the same model with ``compile="onnx"`` and build that (recorded in ``how``). Returns the record,
    with ``compiled_bundle``: the compiled form on disk, for the in-process comparison."""
    import joblib
    import numpy as np

    import shipyard
    from shipyard.bundle import Bundle

    print("building the compiled image: shipyard build --compile onnx", file=sys.stderr)
    before = (bundle / "shipyard.toml").read_bytes()
    record: dict[str, Any] = {}
    try:
        record["first_build_s"] = _timed([*build(bundle, tag), "--compile", "onnx"])
        record["how"] = "shipyard build BUNDLE --compile onnx"
        record["bundle_unchanged"] = (bundle / "shipyard.toml").read_bytes() == before
    except SystemExit as exc:
        record["cli_error"] = str(exc)[:600]
    try:
        from shipyard.handler.compile import compile_bundle

        # the conversion the build runs, into a copy of its own, for the in-process comparison
        compile_bundle(bundle, work / "digits-compiled", mode="onnx")
        record["compared"] = "compile_bundle(BUNDLE, COPY, mode='onnx'): what build --compile runs"
        compiled = work / "digits-compiled"
    except Exception as exc:  # the API differs from the contract: compare the saved compiled form instead
        record["compile_bundle_error"] = f"{type(exc).__name__}: {exc}"[:600]
        compiled = work / "digits-onnx"
        shipyard.save(
            joblib.load(bundle / "model" / "model.joblib"),
            compiled,
            example=np.asarray(example["instances"], dtype=np.float64),
            name="digits",
            version="1",
            compile="onnx",
        )
        record["compared"] = 'shipyard.save(model, compile="onnx"): a second bundle from the same model'
    if Bundle.open(compiled).flavor != "onnx":
        raise SystemExit(f"the digits model did not compile: {(compiled / 'shipyard.toml').read_text()}")
    record["compiled_bundle"] = compiled
    if "cli_error" in record:
        record["first_build_s"] = _timed(build(compiled, tag))
        record["how"] = 'shipyard.save(model, compile="onnx") (a second bundle), then shipyard build'
    return record


def _numpy_twin(bundle: Path, path: Path) -> Path:
    """The digits model as a numpy-only Python callable: same predictions, no scikit-learn at serve time."""
    import joblib
    import numpy as np

    import shipyard

    model = joblib.load(bundle / "model" / "model.joblib")
    coef, intercept, classes = model.coef_.copy(), model.intercept_.copy(), model.classes_.copy()

    def predict(batch: Any) -> Any:
        return classes[(np.asarray(batch, dtype=np.float64) @ coef.T + intercept).argmax(axis=1)]

    example = np.asarray(json.loads((bundle / "example.json").read_text())["instances"], dtype=np.float64)
    assert (predict(example) == model.predict(example)).all()
    shipyard.save(predict, path, example=example, name="digits-numpy")
    return path


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return round(seconds, 3)


def _cold_start(image: str, example: dict[str, Any]) -> tuple[float, float]:
    """Seconds from `podman run` to the first /ping 200, and to the first correct prediction."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    body = json.dumps({"instances": example["instances"]}).encode()
    started = time.perf_counter()
    container = subprocess.run(
        ["podman", "run", "-d", "-p", f"127.0.0.1:{port}:8080", image, "serve"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ping = None
    try:
        with httpx.Client(timeout=5.0) as client:
            while time.perf_counter() - started < 120:
                try:
                    if ping is None:
                        if client.get(f"http://127.0.0.1:{port}/ping").status_code == 200:
                            ping = time.perf_counter() - started
                        else:
                            time.sleep(0.01)
                        continue
                    answer = client.post(
                        f"http://127.0.0.1:{port}/invocations",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    if answer.status_code == 200 and answer.json()["predictions"] == example["predictions"]:
                        return ping, time.perf_counter() - started
                    raise SystemExit(f"{image} answered {answer.status_code}: {answer.text[:300]}")
                except httpx.HTTPError:
                    time.sleep(0.01)
        raise SystemExit(f"{image} did not answer within 120 s")
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "5", container], capture_output=True, check=False)


def _image_count() -> int | None:
    done = subprocess.run(["podman", "images", "--all", "--quiet"], capture_output=True, text=True, check=False)
    # None when the listing failed (another process removing an image mid-listing), not a false 0
    return len(done.stdout.split()) if done.returncode == 0 else None


def _podman_version() -> str:
    done = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


_SHOWN_LABELS = ("dev.shipyard.form", "dev.shipyard.pruned")  # the compiled image's labels the report quotes


def _markdown(document: dict[str, Any]) -> str:
    results = document["results"]
    t, s = results["tutorial"], results["shipyard"]
    c, f = results.get("shipyard compiled", {}), results.get("server floor", {})
    rows = [
        ("image size (MB)", "size_mb"),
        ("layers", "layers"),
        ("cold start → first /ping 200 (s, median)", "cold_start_ping_s"),
        ("cold start → first correct prediction (s, median)", "cold_start_prediction_s"),
        ("cold build, --no-cache (s)", "cold_build_s"),
        ("warm build, nothing changed (s)", "warm_build_s"),
        ("rebuild after a handler-code change (s, median)", "code_rebuild_s"),
    ]
    lines = [
        "# Image benchmark: Shipyard vs the hand-written tutorial image",
        "",
        f"{document['date']}, {document['machine']['cpus']} CPUs, {document['machine']['podman']}, "
        f"load average {document['machine'].get('load_average_at_start', '?')} at the start, "
        f"{document['machine']['load_average_at_end']} at the end, "
        f"{document['machine'].get('images_in_store') or '?'} images in Podman's store, "
        f"base `{document['base']}`, cold starts: median of {document['runs']}. "
        f"Reproduce: `.venv/bin/python bench/image.py{' --prune' if document.get('pruned') else ''}` "
        "(see its docstring).",
        "",
        "| | tutorial (Flask + gunicorn, 2 workers) | Shipyard | Shipyard compiled (ONNX) "
        "| server floor (same model, numpy only) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {t.get(key)} | {s.get(key)} | {c.get(key, '')} | {f.get(key, '')} |")
    lines += ["", "| target | ratio / value | met |", "|---|---:|:---:|"]
    ratios, targets = document["ratios"], document["targets"]

    def met(name: str) -> str:
        return "yes" if targets[name] else "**no**"

    lines.append(f"| size ≤ tutorial | {ratios['size']} × | {met('size <= tutorial')} |")
    lines.append(
        f"| cold start to first prediction ≤ 0.7 × tutorial | {ratios['cold_start_prediction']} × | "
        f"{met('cold start <= 0.7 x tutorial')} |"
    )
    lines.append(f"| code-only rebuild ≤ 2 s | {s['code_rebuild_s']} s | {met('code-only rebuild <= 2 s')} |")
    if c:
        p = c["predictions"]
        lines.append(
            f"| compiled size ≤ 0.7 × tutorial | {ratios['compiled_size']} × | "
            f"{met('compiled size <= 0.7 x tutorial')} |"
        )
        lines.append(
            f"| compiled cold start to first correct prediction ≤ 0.5 × tutorial | "
            f"{ratios['compiled_cold_start_prediction']} × | {met('compiled cold start <= 0.5 x tutorial')} |"
        )
        lines.append(
            f"| compiled labels = native on {p['rows']:,} generated rows | {p['labels_equal']:,} equal | "
            f"{met('compiled labels = native on 10,000 rows')} |"
        )
    lines += [
        "",
        "Server floor: Shipyard's server and image layout serving the digits model as a numpy-only callable "
        "(the same predictions): Shipyard's cold start minus this is what importing scikit-learn costs.",
    ]
    if c:
        p = c["predictions"]
        error = p.get("max_probability_error")
        scores = (
            f"largest probability error (predict_proba, every row and class): {error:.3g}"
            if error is not None
            else f"probabilities not compared: {p.get('probabilities_not_answered')}"
        )
        lines += [
            "",
            f"Shipyard compiled: built with `{c.get('how')}`"
            + (f" (the CLI failed: {c['cli_error'].splitlines()[0]})" if c.get("cli_error") else "")
            + f"; compared in process: {c.get('compared')}. Predictions on {p['rows']:,} generated rows "
            f"(0..16, half integers, half uniform floats), each form loaded by its flavor: "
            f"{p['labels_equal']:,} labels equal"
            + (f", first difference {p['first_difference']}" if p.get("first_difference") else "")
            + f"; {scores}."
            + "".join(f" `{k}`: {v}." for k, v in c.get("labels", {}).items() if k in _SHOWN_LABELS),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
