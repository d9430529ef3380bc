"""A real OCI registry (CNCF distribution, Debian's ``docker-registry``) on 127.0.0.1 for the session.

It stands in for ECR's registry endpoint, which moto does not serve: the sagemaker target pushes there
through its registry override and records the manifest in moto's ECR. Stopped by PID.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["OciRegistry", "start_registry", "tiny_image"]


@dataclass
class OciRegistry:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def manifest(self, repository: str, tag: str) -> httpx.Response:
        return httpx.get(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            headers={
                "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                "application/vnd.oci.image.manifest.v1+json"
            },
            timeout=10,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_registry(root: Path, timeout: float = 30.0) -> OciRegistry:
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    registry = OciRegistry(process, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(root / 'registry.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{registry.host}/v2/", timeout=2).status_code == 200:
                return registry
        except httpx.HTTPError:
            time.sleep(0.1)
    registry.stop()
    raise RuntimeError(f"docker-registry did not answer on {registry.host} within {timeout} s")


def tiny_image(name: str = "localhost/shipyard-test/tiny:1") -> str:
    """A one-file image imported into Podman (a few kB): something real to push where nothing runs it."""
    if subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0:
        return name
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hello.txt").write_text("shipyard test image\n")
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(Path(tmp) / "hello.txt", arcname="hello.txt")
        subprocess.run(
            ["podman", "import", "--change", 'CMD ["serve"]', str(archive), name],
            check=True,
            capture_output=True,
        )
    return name
