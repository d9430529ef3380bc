"""The examples, run as a user runs them: the tutorial handler served unchanged, the digits demo end to end."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import joblib
import numpy as np
import orjson
import pytest

from infra.server import BIN, Server, ServerFactory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "examples" / "tutorial-handler"
DIGITS = ROOT / "examples" / "digits"


def test_tutorial_handler_is_served_unchanged(running_server: ServerFactory, tmp_path: Path) -> None:
    bundle = tmp_path / "tutorial"
    shutil.copytree(TUTORIAL, bundle, ignore=shutil.ignore_patterns("*.joblib", "*.pkl", "__pycache__"))
    prepared = subprocess.run(
        [sys.executable, str(bundle / "prepare.py"), str(bundle)], capture_output=True, text=True, timeout=120
    )
    assert prepared.returncode == 0, prepared.stderr
    assert filecmp.cmp(bundle / "code" / "inference.py", TUTORIAL / "code" / "inference.py", shallow=False)

    server = running_server(bundle, command=[str(BIN / "shipyard"), "serve", str(bundle), "--port", "0", "-w", "1"])
    request = (bundle / "request.json").read_bytes()
    response = httpx.post(
        f"{server.url}/invocations", content=request, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"  # output_fn returned (body, accept)

    model = joblib.load(bundle / "model.joblib")
    encoder = joblib.load(bundle / "label_encoder.pkl")
    features = np.array(orjson.loads(request)["features"])
    labels = encoder.inverse_transform(model.predict(features)).tolist()
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == labels == ["setosa", "virginica"]
    assert all(0 < p["score"] <= 1 for p in predictions)

    # The handler's own error path: its input_fn raises for CSV, which answers 400 with its message.
    refused = httpx.post(f"{server.url}/invocations", content=b"5.1,3.5,1.4,0.2", headers={"content-type": "text/csv"})
    assert refused.status_code == 400
    assert "Unsupported content type: text/csv" in refused.json()["message"]
    assert httpx.get(f"{server.url}/execution-parameters").json()["BatchStrategy"] == "SINGLE_RECORD"


def test_digits_example_serves_what_it_trained(digits_server: Server, digits_bundle: Path) -> None:
    """The bundle examples/digits/train.py saved answers over HTTP exactly as the model does in-process."""
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    model = joblib.load(digits_bundle / "model" / "model.joblib")
    rows = X[-40:]
    response = httpx.post(
        f"{digits_server.url}/invocations",
        content=orjson.dumps(rows.tolist()),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["predictions"] == model.predict(rows).tolist()


def _invoke_table_matches(out: str) -> None:
    """The values of `shipyard invoke`'s table are the in-process predictions the demo printed after it."""
    expected = out.split("expected (in-process): ")[1].splitlines()[0]
    table = out.split("expected (in-process): ")[0].rsplit("$ shipyard invoke", 1)[1]
    values = [line.split("│")[2].strip() for line in table.splitlines() if line.count("│") >= 3]
    assert values == [v.strip() for v in expected.strip("[]").split(",")]


def test_quick_demo_serves_and_invokes() -> None:
    result = subprocess.run(
        [sys.executable, str(DIGITS / "demo.py"), "--quick"], capture_output=True, text=True, timeout=240, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("train LogisticRegression", "serve it", "invoke it", "stop the server"):
        assert step in out
    assert "predictions in" in out  # the rich table of shipyard invoke
    assert "server exited with code 0" in out
    _invoke_table_matches(out)


def test_demo_runs_the_whole_path_and_leaves_nothing_running() -> None:
    """README's first command: build, verify, deploy on the local target, invoke, bench, expose (the local front)
    and invoke through it, status, cleanup (which stops the front).

    Under a name of its own: the engine may be shared (other sessions, a demo someone runs meanwhile), and the
    default name's stale-container removal would remove theirs.
    """
    from infra.base_image import ensure_base_image

    name = f"shipyard-demo-digits-{uuid.uuid4().hex[:8]}"
    image = f"shipyard-demo/digits-{name.rsplit('-', 1)[1]}:1"
    try:
        result = subprocess.run(
            [sys.executable, str(DIGITS / "demo.py"), "--base", ensure_base_image(), "--engine", "podman",
             "--name", name],
            capture_output=True, text=True, timeout=900, cwd=ROOT,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        out = result.stdout
        commands = [line.split()[2] for line in out.splitlines() if line.startswith("$ shipyard ")]
        assert commands == [
            "inspect", "build", "verify", "deploy", "invoke", "bench", "expose", "invoke", "status", "status", "cleanup"
        ]  # fmt: skip
        assert f"-t {image}" in out and f"$ shipyard verify {image}" in out
        assert f"--name {name} --image {image}" in out.split("$ shipyard deploy")[1].splitlines()[0]
        assert f"$ shipyard cleanup {name}" in out
        assert "removing what an interrupted demo run left" not in out  # only under the default name
        assert "[11/11] check with the engine that nothing is left running" in out
        verify = out.split("$ shipyard verify")[1].split("==>")[0]
        assert " pass " in verify and " fail " not in verify
        _invoke_table_matches(out)
        plot = Path(out.split("plot: ")[1].splitlines()[0])
        assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        status = out.split("$ shipyard status")[1]
        assert name in status and "InService" in status
        # Through the public API (the local front, with its key): the same predictions as straight to the endpoint.
        via_api = out.split("--via api")[1].split("==>")[0]
        direct = out.split(f"$ shipyard invoke {name} --data")[1].split("expected (in-process)")[0]
        rows = [line for line in direct.splitlines() if line.count("│") >= 3]
        assert rows and rows == [line for line in via_api.splitlines() if line.count("│") >= 3]
        health = out.split(f"$ shipyard status {name}")[1].split("==>")[0]
        assert "since the container started: invocations" in health and "5xx 0" in health
        front = out.split("$ shipyard cleanup")[1].split("(front ")[1].split(",")[0]  # "deleted 3 (front PID, ...)"
        from shipyard.deploy.front import is_front

        assert not is_front(int(front))  # cleanup stopped it (gone, or a zombie nobody has reaped yet)
        assert f"no container labelled dev.shipyard.deployment={name} is left" in out
        left = subprocess.run(
            ["podman", "ps", "-a", "--filter", f"label=dev.shipyard.deployment={name}", "-q"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert left.stdout.strip() == ""
    finally:
        # The demo keeps its image for a faster rerun; a tag per test run would pile up. Untag only: the layers
        # stay as the build cache of the next run.
        subprocess.run(["podman", "untag", image, f"localhost/{image}"], capture_output=True, check=False)
