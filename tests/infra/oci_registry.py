"""The registry of the deploy tests (ECR's registry endpoint, which moto does not serve) and a tiny image.

The sagemaker target pushes to the registry through its registry override and records the manifest in
moto's ECR. The registry itself is :func:`infra.registry.local_registry`.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["OciRegistry", "tiny_image"]


@dataclass
class OciRegistry:
    """A registry on 127.0.0.1 (started by :func:`infra.registry.local_registry`) and what the tests read back."""

    host: str

    def manifest(self, repository: str, tag: str) -> httpx.Response:
        return httpx.get(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            headers={
                "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                "application/vnd.oci.image.manifest.v1+json"
            },
            timeout=10,
        )


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
