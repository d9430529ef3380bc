"""The lock files agree with pyproject.toml, and scripts/lock.py says so only when they do.

The checks run on copies of the real pyproject.toml and requirements/ in a temporary tree, so a test can break them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _locks() -> list[str]:
    """The lock names, in scripts/lock.py's order (its LOCKS)."""
    script = ROOT / "scripts" / "lock.py"
    listed = subprocess.run([sys.executable, str(script), "names"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    return [line.split()[0] for line in listed.stdout.splitlines()]


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock.py", tmp_path / "scripts" / "lock.py")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def _check(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tree / "scripts" / "lock.py"), "check", *args], capture_output=True, text=True
    )


def test_the_committed_locks_agree_with_pyproject(tmp_path: Path) -> None:
    run = _check(_tree(tmp_path), "--deep")
    assert run.returncode == 0, run.stderr


def test_a_changed_dependency_without_a_new_lock_fails(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9"', '"orjson>=3.10"'))
    run = _check(tree)
    assert run.returncode == 1
    assert "made from another pyproject.toml" in run.stderr and "bash scripts/lock.sh" in run.stderr


def test_a_pin_outside_pyprojects_range_fails_the_deep_check(tmp_path: Path) -> None:
    # The same pin in every lock, so the locks still agree with one another (the cross-lock check passes) and it
    # is the deep check, against pyproject.toml's numpy>=1.26, that must find it, once in each lock.
    tree, locks = _tree(tmp_path), _locks()
    assert "dev" in locks and len(locks) > 1
    for lock in locks:
        path = tree / "requirements" / f"{lock}.txt"
        text, count = re.subn(r"^numpy==\S+", "numpy==1.20.0", path.read_text(), flags=re.M)
        assert count == 1, f"{lock}.txt pins numpy {count} times"
        path.write_text(text)
    assert _check(tree).returncode == 0  # without --deep nothing is wrong
    run = _check(tree, "--deep")
    assert run.returncode == 1
    problems = [line.removeprefix("  - ") for line in run.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [f"{lock}.txt pins numpy==1.20.0, outside numpy>=1.26" for lock in locks], run.stderr


def test_a_lock_entry_without_hashes_fails(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    path = tree / "requirements" / "demo.txt"
    text = re.sub(r"^(orjson==\S+) \\\n(\s+--hash=\S+( \\)?\n)+", r"\1\n", path.read_text(), flags=re.M)
    path.write_text(text)
    run = _check(tree)
    assert run.returncode == 1 and "without hashes: orjson==" in run.stderr


def test_every_lock_pins_each_package_at_devs_version(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    path = tree / "requirements" / "local.txt"
    path.write_text(re.sub(r"^pytest==\S+", "pytest==8.0.0", path.read_text(), flags=re.M))
    run = _check(tree)
    assert run.returncode == 1 and "local.txt pins pytest==8.0.0 but dev.txt pins" in run.stderr
