"""The lock files under requirements/: check them against pyproject.toml, and make a venv match one exactly.

    python scripts/lock.py stamp            write each lock's pyproject digest line (scripts/lock.sh calls it)
    python scripts/lock.py check            pyproject.toml and every lock agree (exit 1 with the fix)
    python scripts/lock.py sync LOCK        run inside the venv: install LOCK exactly (pip, hashes), remove the rest
    python scripts/lock.py pip ARGS...      this interpreter's pip, without the notices of empty index folders
    python scripts/lock.py names            each lock's name and extras (for scripts/lock.sh)

Standard library only (``check --deep`` also uses ``packaging``, which every lock pins), so it runs in a bare venv
before anything is installed. Which extras each lock holds is written once, in ``LOCKS`` below; scripts/lock.sh
reads it from here.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK_DIR = ROOT / "requirements"
# lock name -> the extras of Shipyard it installs (besides Shipyard's own dependencies)
LOCKS: dict[str, tuple[str, ...]] = {
    "dev": ("dev",),  # tests, linters, every flavor: scripts/test.sh
    "demo": ("sklearn", "python", "plot"),  # scripts/demo.sh: train, build, deploy locally, invoke, bench
    "local": ("sklearn", "test"),  # the CI job that runs the local target without the aws extra (no boto3)
}
STAMP = "# pyproject-sha256: "
REGENERATE = "bash scripts/lock.sh"
# installed by the venv itself, never listed in a lock (pip-compile leaves pip out; setuptools is pinned as a
# build dependency where the lock needs it)
_UNLOCKED = {"pip", "shipyard"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def digest() -> str:
    """sha256 of everything in pyproject.toml that decides what a lock holds."""
    data = tomllib.loads(PYPROJECT.read_text())
    project = data["project"]
    relevant = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-system": data.get("build-system", {}).get("requires", []),
        "locks": {name: list(extras) for name, extras in LOCKS.items()},
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def lock_path(name: str) -> Path:
    return LOCK_DIR / f"{name}.txt"


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a pip-compile'd file."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def _unhashed(text: str) -> list[str]:
    lines = text.splitlines()
    return [
        line.split(" ", 1)[0]
        for i, line in enumerate(lines)
        if _PIN.match(line) and not (line.rstrip().endswith("\\") and lines[i + 1].lstrip().startswith("--hash="))
    ]


def stamp() -> int:
    value = digest()
    for name in LOCKS:
        path = lock_path(name)
        lines = [line for line in path.read_text().splitlines() if not line.startswith((STAMP, "# requirements/"))]
        # pip-compile records the project itself (a `shipyard @ file:///...` entry with its warning and "via" lines,
        # because the dev extra names shipyard[...]): a path on the machine that made the lock; setup installs the
        # project itself anyway
        text = "\n".join(lines) + "\n"
        text = re.sub(r"# WARNING: pip install will require.*?\n(?=[A-Za-z0-9])", "", text, flags=re.S)
        kept = re.sub(r"^shipyard @ \S+\n(    #.*\n)*", "", text, flags=re.M).rstrip("\n").splitlines()
        header = f"# requirements/{path.name}: Shipyard with [{','.join(LOCKS[name])}], made by {REGENERATE}"
        path.write_text("\n".join([STAMP + value, header, *kept]) + "\n")
    print(f"stamped {len(LOCKS)} locks with {value[:12]}…")
    return 0


def check(deep: bool) -> int:
    problems: list[str] = []
    want = digest()
    dev: dict[str, str] = {}
    for name in LOCKS:
        path = lock_path(name)
        if not path.is_file():
            problems.append(f"{path.relative_to(ROOT)} is missing")
            continue
        first = path.read_text().split("\n", 1)[0]
        if first != STAMP + want:
            problems.append(
                f"{path.relative_to(ROOT)} was made from another pyproject.toml (its dependencies, extras or "
                "build requirements changed since)"
            )
        text = path.read_text()
        unhashed = _unhashed(text)
        if unhashed:
            problems.append(f"{path.relative_to(ROOT)} has entries without hashes: {', '.join(unhashed[:5])}")
        if "file://" in text or re.search(r"^-e ", text, re.M):
            problems.append(f"{path.relative_to(ROOT)} names a local path (a machine-specific entry)")
        if name == "dev":
            dev = pins(path)
    if dev:
        for name in LOCKS:
            if name == "dev" or not lock_path(name).is_file():
                continue
            for package, version in pins(lock_path(name)).items():
                if dev.get(package, version) != version:
                    problems.append(f"{name}.txt pins {package}=={version} but dev.txt pins {dev[package]}")
    if deep and not problems:
        problems.extend(_unsatisfied())
    if problems:
        print("lock check failed:", *(f"  - {p}" for p in problems), f"fix: {REGENERATE}", sep="\n", file=sys.stderr)
        return 1
    print(f"locks agree with pyproject.toml ({', '.join(lock_path(n).name for n in LOCKS)})")
    return 0


def _unsatisfied() -> list[str]:
    """Every requirement the extras of a lock name is pinned in it, at a version its specifier admits."""
    from packaging.requirements import Requirement

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    problems = []
    for name, extras in LOCKS.items():
        locked = pins(lock_path(name))
        todo, seen = list(extras), set()
        requirements = [Requirement(r) for r in project.get("dependencies", [])]
        while todo:
            extra = todo.pop()
            if extra in seen:
                continue
            seen.add(extra)
            if extra not in optional:
                problems.append(f"{name}: pyproject.toml has no extra {extra!r}")
                continue
            for raw in optional[extra]:
                requirement = Requirement(raw)
                if canonical(requirement.name) == "shipyard":
                    todo.extend(requirement.extras)
                else:
                    requirements.append(requirement)
        for requirement in requirements:
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            version = locked.get(canonical(requirement.name))
            if version is None:
                problems.append(f"{name}.txt does not pin {requirement.name} (pyproject.toml asks for {requirement})")
            elif not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{name}.txt pins {requirement.name}=={version}, outside {requirement}")
    return problems


def sync(path: Path) -> int:
    """Make this interpreter's environment hold exactly ``path``: install what differs, uninstall the rest."""
    from importlib.metadata import distributions

    wanted = pins(path)
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}
    missing = {n: v for n, v in wanted.items() if installed.get(n) != v}
    extra = sorted(n for n in installed if n not in wanted and n not in _UNLOCKED and n != "setuptools")
    if "setuptools" in installed and "setuptools" not in wanted:
        extra.append("setuptools")  # the venv's own copy: a lock that needs it pins it
    if missing:
        print(f"setup: installing {len(missing)} locked packages from {path.relative_to(ROOT)}", file=sys.stderr)
        if code := pip("install", "--quiet", "--require-hashes", "-r", str(path)):
            local = sorted(f"{n}=={v}" for n, v in wanted.items() if "+" in v)
            if local:  # a local-version build (torch's CPU build) lives on PyTorch's index, not on PyPI
                print(
                    f"setup: {path.name} pins {', '.join(local)}: a build PyPI does not serve (the lock was made on "
                    "Linux x86-64, CPython 3.11, where pip found it on the machine's own wheel index). Elsewhere, "
                    "try PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu; the lock's hash of that file "
                    "was not checked against that index.",
                    file=sys.stderr,
                )
            return code
    if extra:
        print(f"setup: removing {len(extra)} packages {path.name} does not name: {', '.join(extra)}", file=sys.stderr)
        return pip("uninstall", "--quiet", "--yes", *extra)
    return 0


def pip(*args: str) -> int:
    """Run this interpreter's pip; its output less the notices about index folders that lack a package."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    noise = ("is ignored: it is neither a file nor a directory",)
    shown = [line for line in run.stdout.splitlines() if run.returncode or not any(n in line for n in noise)]
    if shown:
        print("\n".join(shown), file=sys.stderr)
    return run.returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["stamp"]:
        return stamp()
    if argv[:1] == ["check"]:
        return check(deep="--deep" in argv[1:])
    if argv[:1] == ["sync"] and len(argv) == 2:
        return sync(Path(argv[1]).resolve())
    if argv[:1] == ["pip"]:
        return pip(*argv[1:])
    if argv[:1] == ["names"]:
        for name, extras in LOCKS.items():
            print(name, ",".join(extras))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
