"""The local target's detached helper processes (the API front, the async queue): found and stopped by pid.

A helper outlives the command that started it, so a later command knows it only by the pid and port in the
deployment's record. A pid is trusted only while ``/proc`` shows the helper's module and port in its command line
(a pid the kernel reused for another process is left alone), and stopping is SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["is_running", "stop"]


def is_running(pid: int, module: str, port: int | None = None) -> bool:
    """Whether ``pid`` is (still) ``python -m module``, on ``port`` when given; a zombie is not."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z" or module.encode() not in argv:
        return False
    return port is None or (b"--port" in argv and argv[argv.index(b"--port") + 1 :][:1] == [str(port).encode()])


def stop(pid: int, module: str, port: int | None = None, *, grace_s: float) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; False when ``pid`` is no such helper (already gone: nothing done)."""
    if not is_running(pid, module, port):
        _reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while is_running(pid, module, port) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if is_running(pid, module, port):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while is_running(pid, module, port):
            _reap(pid)
            time.sleep(0.02)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the helper is this process's own child (started by this same command)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
