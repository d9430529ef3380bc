"""What the server's processes do to stay well-behaved members of a machine: die with their parent, offer
themselves to the OOM killer before the supervisor, explain how a child died, and restart it without a
crash loop.

Linux only where it must be (``prctl``, ``/proc``, cgroups); elsewhere each helper degrades to a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections import deque
from pathlib import Path

__all__ = [
    "Backoff",
    "die_with_parent",
    "exit_reason",
    "oom_kills",
    "set_oom_score_adj",
]

_PR_SET_PDEATHSIG = 1

# oom_score_adj of each kind of process: the kernel kills the highest badness first, and the adjustment is
# added to a process's share of memory (in thousandths). The supervisor keeps 0; raising one's own value
# needs no privilege.
OOM_SCORE_MODEL = 1000  # where a leaking model lives: always the first to go
OOM_SCORE_WORKER = 500  # an HTTP worker: holds connections, small


def die_with_parent(signum: int = signal.SIGKILL, parent: int | None = None) -> bool:
    """Have the kernel send ``signum`` to this process when the thread that forked it ends.

    Returns False when the parent is already gone (its pid, given as ``parent``, is no longer ours):
    the signal would never come, so the caller must exit itself.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    return parent is None or os.getppid() == parent


def set_oom_score_adj(value: int) -> None:
    """Raise this process's ``oom_score_adj`` (lowering it needs privilege; failures are ignored)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text(f"{value}\n")


def oom_kills(pid: int | str = "self") -> int | None:
    """How many processes the OOM killer has killed in ``pid``'s memory cgroup (None: not knowable here).

    cgroup v2 counts them in ``memory.events`` (``oom_kill``), v1 in ``memory.oom_control``; a container's
    own cgroup is what it sees at ``/sys/fs/cgroup``.
    """
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2
            candidates += [Path("/sys/fs/cgroup", relative, "memory.events"), Path("/sys/fs/cgroup/memory.events")]
        elif "memory" in controllers.split(","):  # v1
            base = Path("/sys/fs/cgroup/memory")
            candidates += [base / relative / "memory.oom_control", base / "memory.oom_control"]
    for candidate in candidates:
        try:
            text = candidate.read_text()
        except OSError:
            continue
        for entry in text.splitlines():
            key, _, value = entry.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def exit_reason(status: int, oom_before: int | None, oom_after: int | None) -> tuple[str, str]:
    """``(reason, words)`` for a child's ``waitpid`` status: reason is a short label for metrics
    (``out_of_memory``, ``crashed``, ``killed``, ``exited``), words say it to a person."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = _signal_name(signum)
        if signum == signal.SIGKILL:
            if oom_before is not None and oom_after is not None and oom_after > oom_before:
                return "out_of_memory", "out of memory"
            return "killed", f"killed by {name}"
        return "crashed", f"crashed ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return "exited", f"exited with code {code}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Backoff:
    """Delays between restarts of a child that keeps dying: none for the first few deaths, then doubling,
    capped low, and forgotten with healthy uptime (only deaths within the last ``window_s`` count).

    A poison request every few seconds therefore costs only the requests it kills, never minutes with
    no model; a child that dies at once, every time, is restarted at most ``1 / cap_s`` times a second.
    """

    def __init__(self, *, free: int = 3, first_s: float = 0.1, cap_s: float = 1.0, window_s: float = 10.0) -> None:
        self.free = free
        self.first_s = first_s
        self.cap_s = cap_s
        self.window_s = window_s
        self._deaths: deque[float] = deque()

    def died(self, now: float | None = None) -> float:
        """Record a death; returns the seconds to wait before the restart."""
        now = time.monotonic() if now is None else now
        deaths = self._deaths
        deaths.append(now)
        while deaths and deaths[0] < now - self.window_s:
            deaths.popleft()
        recent = len(deaths)
        if recent <= self.free:
            return 0.0
        return min(self.cap_s, self.first_s * 2.0 ** (recent - self.free - 1))
