"""A wheelhouse for the image's platform, resolved on the host.

``pip download --only-binary=:all:`` with the image's Python version, ABI and manylinux tags picks the
wheels an x86_64 (or aarch64) CPython of the base image can install, whatever the host is. The build then
installs them with ``--no-index --require-hashes``: no network inside the build, the same versions every
time, and never an ``exec format error`` from an arm64 laptop's wheels.

Cache layout (:attr:`Settings.cache_dir <shipyard.settings.Settings.cache_dir>`: ``$SHIPYARD_CACHE_DIR``,
default ``~/.cache/shipyard``)::

    wheels/<target>/            every wheel downloaded for that target (python + platform), shared
    locks/<key>.lock            a resolution: ``name==version --hash=sha256:...`` per wheel, by input key
    shipyard/<source-hash>/     the wheel of the local Shipyard source tree, by content

A resolution whose inputs (requirements, target) have been seen before costs no pip call at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from shipyard.errors import ImageError
from shipyard.settings import Settings

__all__ = [
    "PRUNE",
    "SERVING_PACKAGES",
    "Lock",
    "Platform",
    "pip_wheel",
    "prune_paths",
    "resolve",
    "serving_requirements",
    "shipyard_wheel",
]

# What the server imports inside the image: Shipyard's core dependencies minus the CLI's (typer, rich,
# httpx), with uvicorn's fast loop and parser but without its dev-reload and websocket extras.
SERVING_PACKAGES = ("numpy", "orjson", "uvicorn", "httptools", "uvloop", "prometheus-client", "tomli-w")
INIT_PACKAGE = "dumb-init==1.2.5.post1"  # PID 1 of the image (a static binary shipped as a manylinux wheel)

# Files of installed packages the server never loads, removed in the same RUN that installs them (a later RUN
# would not shrink the image): paths relative to site-packages (globs allowed), and console scripts in bin/.
# onnxruntime: libonnxruntime.so is the C API library (the Python module links its own pybind .so, whose only
# NEEDED entries are libc/libstdc++/libm); transformers/, tools/ and quantization/ are offline tooling. Measured
# with onnxruntime 1.32.0: 83 MB installed (with protobuf, packaging, flatbuffers) → 40 MB, and the pruned
# package imports and runs an InferenceSession.
PRUNE: dict[str, tuple[str, ...]] = {
    "onnxruntime": (
        "onnxruntime/capi/libonnxruntime.so.*",
        "onnxruntime/transformers",
        "onnxruntime/tools",
        "onnxruntime/quantization",
        "bin/onnxruntime_test",  # its console script, which imports onnxruntime.tools
    ),
}

_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Platform:
    """The interpreter and platform the wheels are for: the base image's CPython (``key()`` names it)."""

    python: str  # "3.11" (major.minor)
    glibc: tuple[int, int] = (2, 36)
    machine: str = "x86_64"  # x86_64 | aarch64

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def platform_tags(self) -> list[str]:
        """Every manylinux tag this glibc runs: pip does not infer older ones from a newer one."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    def key(self) -> str:
        return f"cp{self.python.replace('.', '')}-glibc{self.glibc[0]}.{self.glibc[1]}-{self.machine}"


@dataclass(frozen=True)
class Lock:
    """A resolved set of wheels: the lines of a ``--require-hashes`` requirements file and where the files are."""

    lines: tuple[str, ...]
    files: tuple[Path, ...]

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)

    def link_into(self, directory: Path) -> None:
        """Make ``directory`` hold exactly these wheels (hard links where possible: no copy, same mtimes)."""
        directory.mkdir(parents=True, exist_ok=True)
        wanted = {path.name: path for path in self.files}
        for existing in directory.iterdir():
            if existing.name not in wanted:
                existing.unlink()
        for name, source in wanted.items():
            target = directory / name
            if target.exists() and _same_file(target, source):
                continue
            target.unlink(missing_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def prune_paths(lines: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """What :data:`PRUNE` removes for the packages among ``lines`` (a lock's or requirements' lines), by package."""
    named = {_key(line) for line in lines}
    return {package: paths for package, paths in PRUNE.items() if _key(package) in named}


def _same_file(a: Path, b: Path) -> bool:
    """The same inode (a hard link), or a copy with the same size and mtime (copy2 keeps the mtime).

    Size alone is not enough: Shipyard's own wheel keeps its name from one source edit to the next.
    """
    first, second = a.stat(), b.stat()
    if (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino):
        return True
    return first.st_size == second.st_size and first.st_mtime_ns == second.st_mtime_ns


def serving_requirements(bundle_requirements: Sequence[str]) -> list[str]:
    """The server's packages pinned to the versions installed here (what the tests ran), unless the bundle pins them."""
    named = {_key(r) for r in bundle_requirements if _key(r)}
    result = list(bundle_requirements)
    for package in SERVING_PACKAGES:
        if _key(package) in named:
            continue
        try:
            result.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            result.append(package)
    result.append(INIT_PACKAGE)
    return result


def resolve(
    requirements: Iterable[str],
    target: Platform,
    progress: Progress | None = None,
    *,
    settings: Settings | None = None,
) -> Lock:
    """Download (or find in ``settings.cache_dir``) the wheels for ``requirements`` on ``target``; their lock."""
    settings = settings or Settings.from_env()
    requirements = sorted({r.strip() for r in requirements if r.strip()})
    root = settings.cache_dir
    wheels = root / "wheels" / target.key()
    key = hashlib.sha256(json.dumps([target.key(), requirements]).encode()).hexdigest()[:24]
    lock_path = root / "locks" / f"{key}.lock"
    if lock_path.is_file():
        lock = _read_lock(lock_path, wheels)
        if lock is not None:
            return lock
    if progress:
        progress(f"resolving {len(requirements)} requirements for {target.key()} (pip download)")
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shipyard-wheels-", dir=root) as tmp:
        request = Path(tmp) / "requirements.in"
        request.write_text("".join(f"{r}\n" for r in requirements))
        command = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", target.python,
            "--abi", target.abi, "--abi", "abi3", "--abi", "none",
            *[arg for tag in target.platform_tags() for arg in ("--platform", tag)],
            "--find-links", str(wheels),  # already-downloaded wheels are copied, not fetched again
            "--dest", str(Path(tmp) / "out"), "-r", str(request),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=settings.child_env())
        if done.returncode != 0:
            raise ImageError(
                f"cannot resolve the image's requirements for {target.key()} "
                f"(CPython {target.python}, glibc {target.glibc[0]}.{target.glibc[1]}): "
                f"{_pip_error(done.stderr or done.stdout)}\n"
                "Every requirement needs a binary wheel for that platform; pin a version that has one "
                "in code/requirements.txt, or pick a base image with another Python (--base)."
                + _local_version_hint(requirements)
            )
        files = []
        for wheel in sorted((Path(tmp) / "out").glob("*.whl")):
            final = wheels / wheel.name
            if not final.exists():
                os.replace(wheel, final)
            files.append(final)
    lock = _lock_for(files)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(lock_path, lock.text())
    return lock


def _local_version_hint(requirements: Sequence[str]) -> str:
    """PyTorch's CPU builds (``torch==2.13.0+cpu``) are not on PyPI: say where they are."""
    local = [r for r in requirements if "==" in r and "+" in r.split("==", 1)[1]]
    if not local:
        return ""
    return (
        f"\n{', '.join(local)} pins a local version (the part after '+'), which PyPI does not serve; the "
        "resolution runs pip with your pip settings, so name the index that has it, e.g. "
        "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu for PyTorch's CPU builds."
    )


def shipyard_wheel(progress: Progress | None = None, *, settings: Settings | None = None) -> Lock:
    """The wheel of the Shipyard running now: built from its source tree (editable installs), else downloaded."""
    settings = settings or Settings.from_env()
    source = _source_tree()
    root = settings.cache_dir / "shipyard"
    env = settings.child_env()
    if source is None:
        from shipyard.version import __version__

        target = root / f"release-{__version__}"
        if not any(target.glob("*.whl")):
            _pip(["download", "--no-deps", "--only-binary=:all:", f"shipyard=={__version__}", "-d", str(target)], env)
        return _lock_for(sorted(target.glob("*.whl")))
    digest = _tree_hash(source)
    target = root / digest
    if not any(target.glob("*.whl")):
        if progress:
            progress(f"building a wheel of Shipyard from {source}")
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as tmp:
            # The host's setuptools (no build isolation) keeps this to a second; isolation is the fallback.
            try:
                _pip(["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp, str(source)], env)
            except ImageError:
                _pip(["wheel", "--no-deps", "--wheel-dir", tmp, str(source)], env)
            target.mkdir(parents=True, exist_ok=True)
            for wheel in Path(tmp).glob("*.whl"):
                os.replace(wheel, target / wheel.name)
    return _lock_for(sorted(target.glob("*.whl")))


def pip_wheel(target: Platform, progress: Progress | None = None, *, settings: Settings | None = None) -> Path:
    """A pip wheel for ``target``: the build runs pip from it (``python pip.whl/pip``), so the image has no pip.

    The host's pip version when it supports the target's Python, else the newest that does.
    """
    try:
        pinned = [f"pip=={metadata.version('pip')}"]
    except metadata.PackageNotFoundError:
        pinned = ["pip"]
    try:
        lock = resolve(pinned, target, progress, settings=settings)
    except ImageError:
        lock = resolve(["pip"], target, progress, settings=settings)
    return lock.files[0]


def _source_tree() -> Path | None:
    """The project directory of an editable (or local-path) install of Shipyard, if that is what runs.

    The tree this module was imported from comes first: with PYTHONPATH pointing at another checkout (a git
    worktree) than the one installed, the image must get the code that runs, not the installed one."""
    here = Path(__file__).resolve().parents[3]  # src/shipyard/image/wheelhouse.py → the project
    if (here / "pyproject.toml").is_file() and (here / "src" / "shipyard").is_dir():
        return here
    try:
        distribution = metadata.distribution("shipyard")
    except metadata.PackageNotFoundError:
        return None
    raw = distribution.read_text("direct_url.json")
    if raw:
        url = json.loads(raw).get("url", "")
        if url.startswith("file://"):
            path = Path(url[len("file://") :])
            if (path / "pyproject.toml").is_file() and (path / "src" / "shipyard").is_dir():
                return path
    return None


def _tree_hash(source: Path) -> str:
    digest = hashlib.sha256()
    files = [source / "pyproject.toml", *sorted((source / "src" / "shipyard").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(source).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _lock_for(files: Sequence[Path]) -> Lock:
    lines = []
    for path in files:
        match = _WHEEL.match(path.name)
        if not match:
            raise ImageError(f"{path} is not a wheel file name")
        name = match["name"].replace("_", "-").lower()
        lines.append(f"{name}=={match['version']} --hash=sha256:{_sha256(path)}")
    return Lock(tuple(lines), tuple(files))


def _read_lock(path: Path, wheels: Path) -> Lock | None:
    """A cached lock, if every wheel it names is still in the cache."""
    lines = tuple(line for line in path.read_text().splitlines() if line.strip())
    files: list[Path] = []
    names: dict[tuple[str, str], Path] = {}
    for wheel in wheels.glob("*.whl"):
        match = _WHEEL.match(wheel.name)
        if match:
            names[(match["name"].replace("_", "-").lower(), match["version"])] = wheel
    for line in lines:
        spec = line.split(" ", 1)[0]
        name, _, version = spec.partition("==")
        found = names.get((name, version))
        if found is None:
            return None
        files.append(found)
    return Lock(lines, tuple(files))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(requirement: str) -> str:
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _pip(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        raise ImageError(f"pip {args[0]} failed: {_pip_error(done.stderr or done.stdout)}")


def _pip_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return " ".join(errors[-3:] or lines[-3:]) or "(no output)"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
