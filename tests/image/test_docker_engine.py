"""The Docker code path, for real: the Docker CLI against Podman's Docker-compatible API.

No Docker daemon runs here, so ``podman system service`` stands in for it (started for this module,
stopped by PID). The CLI has no buildx plugin, so this is the legacy builder path: the wheels are copied
into the first stage instead of mounted. The buildx command line is covered by a unit test.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.image import BuildOptions, build
from shipyard.image.engine import Engine, detect
from shipyard.image.verify import VerifyOptions, verify


@pytest.fixture(scope="module")
def docker_host(podman: str) -> Iterator[str]:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not installed (this machine image ships it; install docker.io's client)")
    socket_dir = Path(tempfile.mkdtemp(prefix="shipyard-podman-api-"))
    address = f"unix://{socket_dir / 'podman.sock'}"
    service = subprocess.Popen([podman, "system", "service", "--time=0", address], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (socket_dir / "podman.sock").exists():
            if time.monotonic() > deadline or service.poll() is not None:
                pytest.fail("podman system service did not start")
            time.sleep(0.1)
        yield address
    finally:
        service.terminate()
        service.wait(10)
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_buildx_command_line_makes_one_plain_manifest() -> None:
    command = Engine("docker", "docker", "buildx").build_command(
        Path("/ctx"), "d:1", platform="linux/amd64", labels={"a": "b"}, build_contexts={"wheelhouse": Path("/w")}
    )
    assert command[:3] == ["docker", "buildx", "build"]
    assert {"--load", "--provenance=false", "--sbom=false"} <= set(command)
    assert command[command.index("--platform") + 1] == "linux/amd64"
    assert command[command.index("--build-context") + 1] == "wheelhouse=/w"


@pytest.mark.integration
def test_docker_legacy_builder_builds_an_image_that_verifies(
    docker_host: str, base_image: str, digits_bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    engine = detect()  # docker answers now, so it is preferred
    assert (engine.name, engine.builder) == ("docker", "legacy")
    emitted = tmp_path / "Containerfile"
    result = build(digits_bundle, BuildOptions(tag="shipyard-test/digits:docker", base=base_image, emit=emitted))
    assert result.engine == "docker (legacy)"
    assert "COPY wheelhouse/ /wheelhouse/" in emitted.read_text()
    assert not any("wheelhouse" in layer.created_by for layer in result.layers)  # only in the first stage
    report = verify("shipyard-test/digits:docker", VerifyOptions(timeout=90, scan_layers=False))
    assert report.passed, report.to_dict()
