"""The queue as a detached process (as the front is, deploy/front/process.py): its own session and log file,
found again by its pid only while ``/proc/PID/cmdline`` says it is this queue, stopped with SIGTERM then
SIGKILL."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shipyard.deploy import detached
from shipyard.errors import DeployError

__all__ = ["QueueProcess", "is_queue", "queue_command", "running_command", "start_queue", "stop_queue"]

MODULE = "shipyard.deploy.queue"


@dataclass(frozen=True)
class QueueProcess:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def queue_command(
    endpoint: str,
    upstream: str,
    bucket: Path,
    port: int,
    *,
    concurrency: int,
    timeout_s: float,
    notify_success: bool = False,
    notify_error: bool = False,
    grace_s: float = 5.0,
    output: str | None = None,
    failure: str | None = None,
) -> list[str]:
    """The queue's command line (also what ``running_command`` reads back, to tell whether its settings changed)."""
    command = [sys.executable, "-m", MODULE, "--endpoint", endpoint, "--upstream", upstream, "--port", str(port)]
    command += ["--bucket", str(bucket), "--concurrency", str(concurrency), "--timeout", f"{timeout_s:g}"]
    command += ["--grace", f"{grace_s:g}"]
    command += ["--notify-success"] * notify_success + ["--notify-error"] * notify_error
    command += ["--output", output] if output else []
    command += ["--failure", failure] if failure else []
    return command


def running_command(pid: int) -> list[str] | None:
    """The command line of the queue ``pid`` (None when it is no queue)."""
    if not is_queue(pid):
        return None
    try:
        return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return None


def start_queue(
    endpoint: str,
    upstream: str,
    bucket: Path,
    *,
    log_path: Path,
    concurrency: int,
    timeout_s: float,
    notify_success: bool = False,
    notify_error: bool = False,
    port: int | None = None,
    wait_s: float = 20.0,
    grace_s: float = 5.0,
    output: str | None = None,
    failure: str | None = None,
) -> QueueProcess:
    """Start the queue (a new session, so it outlives this command) and wait until it answers ``/ping``.
    ``grace_s``: on SIGTERM, how long its running requests may take to finish."""
    port = port or _free_port()
    bucket.mkdir(parents=True, exist_ok=True)
    command = queue_command(
        endpoint, upstream, bucket, port, concurrency=concurrency, timeout_s=timeout_s,
        notify_success=notify_success, notify_error=notify_error, grace_s=grace_s, output=output, failure=failure,
    )  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=bucket,
        )
    queue = QueueProcess(process.pid, port)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-10:]
            raise DeployError(f"the async queue exited with code {process.returncode}: " + " | ".join(tail))
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{queue.url}/ping", timeout=1.0).status_code == 200:
                return queue
        time.sleep(0.05)
    stop_queue(process.pid, port)
    raise DeployError(f"the async queue did not answer on 127.0.0.1:{port} within {wait_s:g} s (log: {log_path})")


def is_queue(pid: int, port: int | None = None) -> bool:
    """Whether ``pid`` is (still) a queue, on ``port`` when given: a pid reused by another process is not."""
    return detached.is_running(pid, MODULE, port)


def stop_queue(pid: int, port: int | None = None, *, grace_s: float = 15.0) -> bool:
    """SIGTERM (the queue lets its running requests finish, 5 s by default), then SIGKILL after ``grace_s``; False
    when ``pid`` is no queue (already gone: nothing done)."""
    return detached.stop(pid, MODULE, port, grace_s=grace_s)
