"""A memory-limited cgroup for a test's server: the OOM killer for real, on this machine's kernel.

``with memory_cgroup(600 << 20) as group:`` makes a child cgroup of this process's memory cgroup
(cgroup v1's ``memory`` hierarchy or the unified v2 one) with that limit; ``preexec_fn=group.enter``
starts a subprocess inside it. Needs write access to the cgroup tree (root, as in CI's containers): where
there is none the test is skipped and says why, since a limit cannot be scripted without the kernel's.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class MemoryCgroup:
    path: Path
    version: int

    def enter(self) -> None:
        """Move the calling process into the cgroup (use as ``preexec_fn``)."""
        (self.path / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0


def _own(controller_line: str) -> str:
    return controller_line.split(":", 2)[2].lstrip("/")


@contextlib.contextmanager
def memory_cgroup(limit_bytes: int) -> Iterator[MemoryCgroup]:
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = next((line for line in lines if "memory" in line.split(":")[1].split(",")), None)
    name = f"shipyard-test-{uuid.uuid4().hex[:8]}"
    if v1 is not None:
        base = Path("/sys/fs/cgroup/memory") / _own(v1)
        if not base.is_dir():
            base = Path("/sys/fs/cgroup/memory")
        group, version = base / name, 1
    else:
        unified = next((line for line in lines if line.startswith("0::")), None)
        if unified is None:
            pytest.skip("no memory cgroup on this machine: an OOM kill cannot happen under a limit here")
        group, version = Path("/sys/fs/cgroup") / _own(unified) / name, 2
    try:
        group.mkdir()
        if version == 1:
            (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):
                (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))  # no swapping around it
        else:
            (group / "memory.max").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):
                (group / "memory.swap.max").write_text("0")
    except OSError as exc:
        with contextlib.suppress(OSError):
            group.rmdir()
        pytest.skip(f"cannot make a memory cgroup here ({exc}): the OOM killer needs a real limit")
    try:
        yield MemoryCgroup(group, version)
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                group.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
