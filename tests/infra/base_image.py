"""``localhost/python-base:3.11-bookworm``: a Debian bookworm image with Python 3.11, made without a registry.

    python tests/infra/base_image.py      make it unless Podman has it; print its name (scripts/demo.sh uses it)

No image can be pulled here, so the base image is bootstrapped from Debian's packages (about a minute) and
imported into Podman's storage, once: later sessions find it there and reuse it. The Debian mirror is read
from the machine's own apt sources at run time (never written into the repository).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["BASE_IMAGE", "debian_mirror", "ensure_base_image"]

BASE_IMAGE = "localhost/python-base:3.11-bookworm"
_PACKAGES = "python3,python3-venv,ca-certificates"


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The first Debian archive URL (not the security one) in the machine's apt sources."""
    texts = []
    listing = sources / "sources.list"
    if listing.is_file():
        texts.append(listing.read_text())
    directory = sources / "sources.list.d"
    if directory.is_dir():
        texts += [p.read_text() for p in sorted(directory.iterdir()) if p.suffix in (".list", ".sources")]
    candidates: list[str] = []
    for text in texts:
        candidates += re.findall(r"^\s*URIs:\s*(\S+)", text, flags=re.M)  # deb822 .sources
        candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.M)  # one-line .list
    for url in candidates:
        if "security" not in url and url.rstrip("/").endswith("/debian"):
            return url
    raise RuntimeError(f"no Debian mirror found in {sources}/sources.list(.d); cannot bootstrap a base image")


def image_exists(name: str = BASE_IMAGE) -> bool:
    return subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0


def ensure_base_image(name: str = BASE_IMAGE, suite: str = "bookworm") -> str:
    """Build ``name`` with debootstrap unless Podman already has it; returns the name."""
    if image_exists(name):
        return name
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise RuntimeError("debootstrap is not installed: run scripts/system-deps.sh as root")
    with tempfile.TemporaryDirectory(prefix="shipyard-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={_PACKAGES}", suite, str(rootfs), debian_mirror()],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"debootstrap failed ({run.returncode}): {run.stdout[-2000:]}{run.stderr[-2000:]}")
        # What a slim base image leaves out: the downloaded .debs and apt's package lists.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "--change", 'CMD ["/bin/bash"]', "-", name],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0:
            raise RuntimeError(f"podman import failed: {imported.stderr[-2000:]}")
    return name


if __name__ == "__main__":
    print(ensure_base_image())
