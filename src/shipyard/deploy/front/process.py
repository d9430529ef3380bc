"""The front as a detached process: started in its own session with a log file, found again by its pid (only
when ``/proc/PID/cmdline`` still says it is that front), stopped with SIGTERM then SIGKILL; its API key file."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shipyard.deploy import detached
from shipyard.deploy.expose import ExposeOptions
from shipyard.errors import DeployError

__all__ = ["FrontProcess", "is_front", "new_api_key", "start_front", "stop_front", "write_key_file"]

MODULE = "shipyard.deploy.front"
_KEY_ALPHABET = string.ascii_letters + string.digits


def new_api_key() -> str:
    """A key like API Gateway's: 40 letters and digits."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(40))


def write_key_file(path: Path, key: str) -> None:
    """The key, readable by its owner only (mode 0600, set when the file is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class FrontProcess:
    pid: int
    port: int
    path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


def _command(upstream: str, port: int, options: ExposeOptions, key_file: Path | None) -> list[str]:
    command = [sys.executable, "-m", MODULE, "--upstream", upstream, "--port", str(port), "--path", options.path]
    command += ["--rate", f"{options.rate:g}", "--burst", str(options.burst), "--auth", options.auth]
    if options.quota is not None:
        command += ["--quota", str(options.quota)]
    if key_file is not None:
        command += ["--key-file", str(key_file)]
    return command


def start_front(
    upstream: str,
    options: ExposeOptions,
    *,
    log_path: Path,
    key_file: Path | None = None,
    port: int | None = None,
    timeout_s: float = 20.0,
) -> FrontProcess:
    """Start the front (a new session, so it outlives this command) and wait until it answers."""
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            _command(upstream, port, options, key_file),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=log_path.parent,
        )
    front = FrontProcess(process.pid, port, options.path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-10:]
            raise DeployError(f"the front exited with code {process.returncode}: " + " | ".join(tail))
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)  # any answer (403) means it serves
            return front
        time.sleep(0.05)
    stop_front(process.pid, port)
    raise DeployError(f"the front did not answer on 127.0.0.1:{port} within {timeout_s:g} s (log: {log_path})")


def is_front(pid: int, port: int | None = None) -> bool:
    """Whether ``pid`` is (still) a front, on ``port`` when given: a pid reused by another process is not."""
    return detached.is_running(pid, MODULE, port)


def stop_front(pid: int, port: int | None = None, *, grace_s: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; False when ``pid`` is no front (already gone: nothing done)."""
    return detached.stop(pid, MODULE, port, grace_s=grace_s)
