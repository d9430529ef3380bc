"""A Shipyard server in a subprocess, on a free port, for tests that talk real HTTP to it.

``start_server(bundle, log_path, env=...)`` runs ``serve`` (SageMaker's entry point, configured by
environment variables) or any command line, waits for ``/ping``, and returns a :class:`Server` whose
``stop()`` always ends it and its workers. The fixtures in tests/conftest.py build on it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A server subprocess (``serve`` or ``shipyard serve``) and its combined stdout/stderr log."""

    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line the server wrote so far (non-JSON lines are skipped)."""
        lines = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(line)
                if isinstance(value, dict):
                    lines.append(value)
        return lines

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The first log line matching ``predicate``, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if predicate(line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no matching log line within {timeout} s; log:\n{self.log_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The supervisor's child processes (the workers), from /proc."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/ping", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise AssertionError(f"server not ready within {timeout} s (last: {last}):\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL the whole process group if it does not exit in time; the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Workers left behind by a killed supervisor belong to the group we created: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server whose port must be known up front)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``: a child forked by one of its threads (a worker's model process) is listed
    under that thread in /proc, so every thread is read."""
    direct: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            direct += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return direct + [grandchild for child in direct for grandchild in descendants(child)]


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any server setting of ours, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SAGEMAKER_", "SHIPYARD_", "SM_")) and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_server(
    bundle: Path | str,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    wait: bool = True,
    timeout: float = 60.0,
    nofile: tuple[int, int] | None = None,
) -> Server:
    """Start ``serve`` (SageMaker's entry point, configured by environment) on a free port.

    The port is 0, so the kernel picks a free one; the server logs the port it bound, which is read back.
    ``command`` replaces ``serve`` (e.g. ``[shipyard, "serve", BUNDLE, "--port", "0"]``). ``nofile``: the
    (soft, hard) open-file limits the server starts with, as ``ulimit -Sn/-Hn`` would set them.
    """
    settings = {
        "SHIPYARD_MODEL_DIR": str(bundle),
        "SAGEMAKER_BIND_TO_PORT": "0",
        "SHIPYARD_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        **(env or {}),
    }
    log = log_path.open("wb")

    def limits() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    process = subprocess.Popen(
        list(command or [str(BIN / "serve")]),
        env=server_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so teardown can end the workers too
        cwd=log_path.parent,
        preexec_fn=limits if nofile is not None else None,
    )
    server = Server(process, log_path, _log=log)
    try:
        listening = _wait_listening(server, timeout)
        server.port = int(listening["port"])
        if wait:
            server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_listening(server: Server, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log_lines():
            if line.get("message") == "listening":
                return line
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log_text()[-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"server did not bind within {timeout} s:\n{server.log_text()[-3000:]}")


class ServerFactory:
    """Starts servers and stops every one of them at teardown."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: list[Server] = []

    def __call__(
        self,
        bundle: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        wait: bool = True,
        timeout: float = 60.0,
        nofile: tuple[int, int] | None = None,
    ) -> Server:
        log_path = self.directory / f"server-{len(self.servers)}.log"
        server = start_server(bundle, log_path, env=env, command=command, wait=wait, timeout=timeout, nofile=nofile)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
