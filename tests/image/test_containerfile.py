"""The rendered Containerfile and the pure helpers around it (no engine needed)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from shipyard.errors import EngineNotFound, ImageError
from shipyard.image import ImageSpec, detect, render
from shipyard.image.containerfile import pruned_label
from shipyard.image.context import FIXED_MTIME, BuildContext
from shipyard.image.engine import is_local_registry
from shipyard.image.scan import scan_env, scan_layers, scan_text
from shipyard.image.wheelhouse import PRUNE, Platform, prune_paths, resolve, serving_requirements


def _instructions(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def test_default_image_is_one_stage_with_mounted_wheels_and_dependencies_before_code() -> None:
    spec = ImageSpec(
        base="python:3.11-slim",
        labels={"org.opencontainers.image.title": "d"},
        pip_wheel="pip-26.3-py3-none-any.whl",
        requirements_sha256="a" * 64,
        shipyard_sha256="b" * 64,
    )
    lines = _instructions(render(spec))
    assert [line for line in lines if line.startswith("FROM")] == ["FROM --platform=linux/amd64 python:3.11-slim"]
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in ("RUN groupadd", "RUN --mount", "LABEL", "ENTRYPOINT", "COPY model/", "COPY code/")
    ]
    assert order == sorted(order)  # the user, the venv, metadata, the model, the code last
    assert lines[-1] == "COPY code/ /opt/ml/model/code/"
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 2
    assert all("--mount=type=bind,from=wheelhouse,target=/wheelhouse" in line for line in installs)
    assert all("--require-hashes" in line and "--no-deps" in line for line in installs)
    assert all("/wheelhouse/pip-26.3-py3-none-any.whl/pip install" in line for line in installs)
    assert "venv --without-pip" in installs[0] and f"requirements.lock sha256={'a' * 64}" in installs[0]
    assert f"shipyard.lock sha256={'b' * 64}" in installs[1]
    assert not any(line.startswith("COPY") and ".lock" in line for line in lines)  # mounted, never in a layer


def test_a_new_lock_changes_only_its_own_run_and_what_follows() -> None:
    """RUN's cache key is its text: each lock's digest is in its RUN, so a new lock reruns exactly that layer."""
    first = _instructions(render(ImageSpec(base="b", requirements_sha256="1" * 64, shipyard_sha256="2" * 64)))
    second = _instructions(render(ImageSpec(base="b", requirements_sha256="1" * 64, shipyard_sha256="3" * 64)))
    changed = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
    assert len(changed) == 1 and "shipyard.lock" in first[changed[0]]


def test_runtime_settings_entrypoint_and_user() -> None:
    text = render(ImageSpec(base="b"))
    lines = _instructions(text)
    env = next(line for line in lines if line.startswith("ENV PATH"))
    for setting in (
        "PYTHONUNBUFFERED=1",
        "PYTHONDONTWRITEBYTECODE=1",
        "SHIPYARD_RUN_AS=model",
        "PATH=/opt/shipyard/venv/bin:",
    ):
        assert setting in env
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == [
        "/opt/shipyard/venv/bin/dumb-init",
        "--single-child",
        "--",
    ]
    assert 'CMD ["serve"]' in lines
    assert not any(line.startswith("USER") for line in lines)  # root starts, the workers drop privileges
    assert "useradd --uid 10001" in text and "--no-log-init" in text


def test_user_mode_sets_a_numeric_non_root_user_and_no_privilege_drop() -> None:
    lines = _instructions(render(ImageSpec(base="b", non_root=True)))
    assert "USER 10001:10001" in lines  # numeric, so Kubernetes' runAsNonRoot can check it
    assert not any("SHIPYARD_RUN_AS" in line for line in lines)


def test_no_bake_leaves_the_model_out_and_legacy_builder_copies_wheels_in_the_first_stage_only() -> None:
    lines = _instructions(render(ImageSpec(base="b", bake=False, mount_wheelhouse=False, platform="linux/arm64")))
    assert not any(line.startswith(("COPY model/", "COPY code/")) for line in lines)
    copy = lines.index("COPY wheelhouse/ /wheelhouse/")
    second_stage = lines.index("FROM --platform=linux/arm64 b")
    assert copy < second_stage
    assert not any("--mount" in line for line in lines)
    assert "COPY --from=venv /opt/shipyard/venv /opt/shipyard/venv" in lines


def test_labels_are_quoted_and_the_text_is_stable() -> None:
    spec = ImageSpec(base="b", labels={"org.opencontainers.image.description": "a server for x y"})
    assert render(spec) == render(spec)
    assert 'org.opencontainers.image.description="a server for x y"' in render(spec)


def test_platform_tags_cover_every_glibc_up_to_the_base_images() -> None:
    tags = Platform("3.11", (2, 36), "x86_64").platform_tags()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_28_x86_64" in tags and "manylinux_2_17_x86_64" in tags
    assert tags[-1] == "manylinux2014_x86_64"
    assert Platform("3.12", (2, 28), "aarch64").abi == "cp312"


def test_serving_requirements_keep_the_bundles_pins_and_add_the_server() -> None:
    requirements = serving_requirements(["numpy==1.26.4", "scikit-learn==1.5.0"])
    assert "numpy==1.26.4" in requirements and sum(r.startswith("numpy") for r in requirements) == 1
    names = {r.split("==")[0] for r in requirements}
    assert {"uvicorn", "uvloop", "httptools", "orjson", "dumb-init"} <= names
    assert not names & {"typer", "rich", "httpx"}  # the CLI's packages stay out of the image


def test_context_files_get_a_fixed_mtime_and_are_not_rewritten(tmp_path: Path) -> None:
    with BuildContext.open(tmp_path / "ctx") as context:
        context.write("Containerfile", b"FROM x\n")
        first = (tmp_path / "ctx" / "Containerfile").stat()
        context.write("Containerfile", b"FROM x\n")
        second = (tmp_path / "ctx" / "Containerfile").stat()
    assert first.st_mtime == second.st_mtime == FIXED_MTIME
    assert first.st_ino == second.st_ino


def test_sync_tree_copies_only_what_changed_and_removes_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "code").mkdir(parents=True)
    (source / "code" / "inference.py").write_text("a = 1\n")
    (source / "code" / "old.py").write_text("")
    with BuildContext.open(tmp_path / "ctx") as context:
        context.sync_tree("code", source / "code", [Path("inference.py"), Path("old.py")])
        inode = (tmp_path / "ctx" / "code" / "inference.py").stat().st_ino
        context.sync_tree("code", source / "code", [Path("inference.py")])
    assert not (tmp_path / "ctx" / "code" / "old.py").exists()
    assert (tmp_path / "ctx" / "code" / "inference.py").stat().st_ino == inode
    assert oct((tmp_path / "ctx" / "code" / "inference.py").stat().st_mode & 0o777) == "0o644"


def test_local_registries_are_recognised() -> None:
    assert is_local_registry("127.0.0.1:5000/digits:1")
    assert is_local_registry("localhost:5000/a/b:1")
    assert not is_local_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com/digits:1")
    assert not is_local_registry("digits:1")


def test_secret_patterns() -> None:
    assert [f.what for f in scan_text(b"key = AKIAABCDEFGHIJKLMNOP", "f")] == ["AWS access key id"]
    assert scan_text(b"aws_secret_access_key = " + b"a" * 40, "f")[0].what == "AWS secret access key"
    assert scan_text(b"-----BEGIN OPENSSH PRIVATE KEY-----", "f")[0].what == "private key"
    assert scan_text(b"numpy 2.4 and the model are fine", "f") == []
    findings = scan_env({"AWS_SECRET_ACCESS_KEY": "x", "PATH": "/bin", "API_TOKEN": "", "NOTE": "AKIAABCDEFGHIJKLMNOP"})
    assert sorted(f.where for f in findings) == ["env AWS_SECRET_ACCESS_KEY", "env NOTE"]


def test_no_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: neither docker nor podman is there
    monkeypatch.delenv("SHIPYARD_ENGINE", raising=False)
    with pytest.raises(EngineNotFound, match=r"Install Docker .* or Podman"):
        detect()
    with pytest.raises(EngineNotFound, match="unknown engine"):
        detect("containerd")
    assert os.environ["PATH"] == str(tmp_path)


def test_an_unresolvable_local_version_pin_says_which_index_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip really runs (and fails): a `+cpu` pin gets a hint naming PyTorch's index, other failures do not."""
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path))
    target = Platform("3.11", (2, 36), "x86_64")
    with pytest.raises(ImageError) as raised:
        resolve(["shipyard-test-no-such-package==1.0+cpu"], target)
    message = str(raised.value)
    assert "cannot resolve the image's requirements for cp311-glibc2.36-x86_64" in message
    assert "shipyard-test-no-such-package==1.0+cpu pins a local version" in message
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in message
    with pytest.raises(ImageError) as plain:
        resolve(["shipyard-test-no-such-package==1.0"], target)
    assert "local version" not in str(plain.value)


def _archive(files: dict[str, bytes]) -> io.BytesIO:
    """A `podman save` archive (docker-archive: one `<id>.tar` per layer) holding one layer with ``files``."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as tar:
        info = tarfile.TarInfo("0123abcd.tar")
        info.size = layer.getbuffer().nbytes
        layer.seek(0)
        tar.addfile(info, layer)
    outer.seek(0)
    return outer


def test_a_token_in_a_file_its_wheel_installed_unchanged_is_reported_apart() -> None:
    """transformers ships a public token in testing_utils.py: not the user's secret, unless the file was altered."""
    site = "opt/shipyard/venv/lib/python3.11/site-packages"
    published = b'TOKEN = "hf_' + b"a" * 34 + b'"\n'
    altered = b'TOKEN = "hf_' + b"b" * 34 + b'"\n'

    def digest(content: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()

    record = (
        f"pkg/testing_utils.py,sha256={digest(published)},{len(published)}\n"
        f"pkg/other.py,sha256={digest(published)},{len(published)}\n"  # what the wheel had; the layer has `altered`
        "pkg-1.0.dist-info/RECORD,,\n"
    ).encode()
    scan = scan_layers(
        _archive(
            {
                f"{site}/pkg/testing_utils.py": published,
                f"{site}/pkg/other.py": altered,
                "root/notes.txt": b"key AKIAABCDEFGHIJKLMNOP\n",
                f"{site}/pkg-1.0.dist-info/RECORD": record,  # after the files it lists, as in a real layer
            }
        )
    )
    assert scan.files == 4
    assert sorted((f.where, f.what) for f in scan.findings) == [
        (f"layer 1: /{site}/pkg/other.py", "Hugging Face token"),
        ("layer 1: /root/notes.txt", "AWS access key id"),
    ]
    packaged = [(f.where, f.what) for f in scan.packaged]
    assert packaged == [(f"layer 1: /{site}/pkg/testing_utils.py", "Hugging Face token")]


ORT_LOCK = (
    "numpy==2.4.6 --hash=sha256:" + "1" * 64,
    "onnxruntime==1.32.0 --hash=sha256:" + "2" * 64,
    "protobuf==7.36.2 --hash=sha256:" + "3" * 64,
)


def test_onnxruntime_is_pruned_in_the_run_that_installs_it_and_a_label_says_what() -> None:
    prune = prune_paths(ORT_LOCK)
    assert set(prune) == {"onnxruntime"}
    for mounted in (True, False):  # the mounted venv layers and the legacy builder's first stage
        lines = _instructions(render(ImageSpec(base="b", mount_wheelhouse=mounted, prune=prune)))
        install = next(line for line in lines if "pip install" in line and "requirements.lock" in line)
        assert "&& rm -rf" in install  # the same RUN: a later one would leave the files in the install's layer
        site = "/opt/shipyard/venv/lib/python3*/site-packages"
        for path in ("onnxruntime/capi/libonnxruntime.so.*", "onnxruntime/transformers", "onnxruntime/tools",
                     "onnxruntime/quantization"):  # fmt: skip
            assert f"{site}/{path}" in install
        assert "/opt/shipyard/venv/bin/onnxruntime_test" in install  # its console script imports the tools
        assert sum("rm -rf" in line for line in lines) == 1
        assert install.index("pip install") < install.index("rm -rf")
    label = pruned_label(prune)
    assert label.startswith("onnxruntime: onnxruntime/capi/libonnxruntime.so.*, onnxruntime/transformers")


def test_nothing_is_pruned_without_onnxruntime() -> None:
    lock = ("numpy==2.4.6 --hash=sha256:" + "1" * 64, "scikit-learn==1.9.1 --hash=sha256:" + "2" * 64)
    assert prune_paths(lock) == {}
    assert prune_paths(["onnxruntime-extensions==0.1 --hash=sha256:" + "4" * 64]) == {}  # another package
    assert prune_paths(["ONNXRuntime==1.32.0"]) == {"onnxruntime": PRUNE["onnxruntime"]}  # names normalised
    text = render(ImageSpec(base="b", prune=prune_paths(lock)))
    assert "rm -rf" not in text and "onnxruntime" not in text
