"""A moto server (AWS APIs on 127.0.0.1) for the session, and the environment that points boto3 at it.

Started once per test session as a subprocess (``moto_server -H 127.0.0.1 -p PORT``) with
``MOTO_IAM_LOAD_MANAGED_POLICIES=true``; stopped by PID. Tests take :func:`aws` (function scope), which
empties every moto backend (``POST /moto-api/reset``) and sets dummy credentials, ``AWS_ENDPOINT_URL``,
retries off and a private ``SHIPYARD_STATE`` for that one test.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

__all__ = ["MotoServer", "aws", "moto_server", "start_moto"]

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(log_dir: Path, timeout: float = 60.0) -> MotoServer:
    exe = Path(sys.executable).parent / "moto_server"
    port = _free_port()
    log_path = log_dir / "moto.log"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env)
    server = MotoServer(process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/moto-api/", timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server did not answer within {timeout} s")


_shared: MotoServer | None = None


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One server for the whole session, even when several test folders' conftests import this fixture."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = start_moto(tmp_path_factory.mktemp("moto"))
        atexit.register(_shared.stop)
    yield _shared


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoServer:
    """A fresh moto, boto3 pointed at it (dummy credentials, no retries), a private state file."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # a refused call must fail now, not after retries
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("SHIPYARD_STATE", str(tmp_path / "state.json"))
    return moto_server
