"""The real CLI on a real local deployment (Podman): ``status`` in an 80-column terminal, in a pipe and as
JSON; ``verify --output json`` on the deployed image; ``cleanup`` run again and again.

No boto3 or moto here: scripts/ci-local-base.sh runs this file in a venv without the aws extra.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.base_image import ensure_base_image
from infra.cli import SHIPYARD, shipyard
from shipyard.deploy.state import Deployment, Resource, StateStore, now_utc

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(*args: str, columns: int = 80, timeout: float = 120) -> tuple[int, str]:
    """The console script in a pseudo-terminal ``columns`` wide (no COLUMNS: the width comes from the TTY).

    Reads until the child closes the terminal; a child still writing (or silent) after ``timeout`` seconds is
    killed and the test fails with what it printed so far, instead of hanging in os.read.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [SHIPYARD, *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        start_new_session=True,  # its own process group, so a timeout ends whatever it started too
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([master], [], [], max(left, 0))
            if not readable:
                with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
                shown = b"".join(chunks).decode(errors="replace")
                pytest.fail(f"shipyard {' '.join(args)} did not finish within {timeout} s in a terminal:\n{shown}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = process.wait(timeout=60)
    return code, ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")


def validate(document: object, schema: str) -> None:
    import jsonschema

    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))


class Deployed:
    def __init__(self, name: str, state: Path, bundle: Path) -> None:
        self.name, self.state, self.bundle = name, state, bundle

    @property
    def record(self) -> Deployment:
        record = StateStore(self.state).get(self.name)
        assert record is not None
        return record


def deploy(bundle: Path, state_dir: Path) -> Iterator[Deployed]:
    """``shipyard deploy BUNDLE --name cli-XXXXXX`` on local, through the console script; cleanup (exit 0) after."""
    name = f"cli-{uuid.uuid4().hex[:6]}"  # other sessions may share this Podman
    state = state_dir / "state.json"
    done = shipyard(
        "deploy", str(bundle), "--name", name, "--base", ensure_base_image(), "--engine", "podman",
        "--state", str(state), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    yield Deployed(name, state, bundle)
    # Also after a test that cleaned it up itself: cleanup is idempotent, and a failing one must not pass unseen.
    gone = shipyard("cleanup", name, "--state", str(state), timeout=600)
    assert gone.returncode == 0, gone.stdout + gone.stderr


@pytest.fixture(scope="module")
def deployed(digits_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """One deployment shared by the tests that only read it (status, verify)."""
    yield from deploy(digits_bundle, tmp_path_factory.mktemp("cli-state"))


@pytest.fixture
def own_deployment(digits_bundle: Path, tmp_path: Path) -> Iterator[Deployed]:
    """A deployment of this test's own, for a test that removes it."""
    yield from deploy(digits_bundle, tmp_path)


def row_line(text: str, name: str) -> str:
    (line,) = [line for line in text.splitlines() if name in line]
    return line


def test_status_in_an_80_column_terminal_keeps_name_state_and_url_whole(deployed: Deployed) -> None:
    url = deployed.record.url
    assert url and url.startswith("http://127.0.0.1:")
    code, text = in_terminal("status", "--state", str(deployed.state), columns=80)
    assert code == 0, text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    line = row_line(text, deployed.name)
    assert "InService" in line and url in line, text  # was "InServi…" and "http:/…"
    assert "…" not in text


def test_status_in_a_pipe_shows_every_column_uncut(deployed: Deployed) -> None:
    done = shipyard("status", "--state", str(deployed.state))
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "name" in line and "state" in line)
    for column in ("target", "endpoint", "size", "created", "age", "TTL", "$/hour", "$ so far"):
        assert column in header, done.stdout
    line = row_line(done.stdout, deployed.name)
    assert "InService" in line and str(deployed.record.url) in line and "…" not in done.stdout


@pytest.mark.parametrize("columns", [80, 60])
def test_status_with_columns_set_drops_the_least_useful_columns(deployed: Deployed, columns: int) -> None:
    done = shipyard("status", "--state", str(deployed.state), env={"COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    assert all(len(line) <= columns for line in done.stdout.splitlines()), done.stdout
    line = row_line(done.stdout, deployed.name)
    assert "InService" in line and str(deployed.record.url) in line and "…" not in done.stdout
    header = next(line for line in done.stdout.splitlines() if "name" in line and "state" in line)
    assert "created" not in header  # the least useful column goes first


def test_status_too_narrow_for_a_table_prints_lines_and_cuts_nothing(deployed: Deployed) -> None:
    done = shipyard("status", "--state", str(deployed.state), env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    assert "━" not in done.stdout  # no table
    lines = done.stdout.splitlines()
    assert deployed.name in lines and "  state: InService" in lines
    assert f"  endpoint: {deployed.record.url}" in lines


def test_status_json_is_what_the_deployment_is(deployed: Deployed) -> None:
    done = shipyard("status", "--output", "json", "--state", str(deployed.state))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # the whole of stdout is one JSON document
    validate(document, "status.v1.json")
    assert document["schema"] == "shipyard.status/1"
    assert document["state_file"] == str(deployed.state)
    (row,) = document["deployments"]
    record = deployed.record
    assert (row["name"], row["target"], row["status"], row["url"]) == (deployed.name, "local", "InService", record.url)
    assert row["created_at"] == record.created_at and row["hourly_usd"] == 0.0
    assert httpx.get(f"{row['url']}/ping", timeout=10).status_code == 200  # the URL is the live endpoint
    one = json.loads(shipyard("status", deployed.name, "--output", "json", "--state", str(deployed.state)).stdout)
    assert one["deployments"] == [{**row, "age_s": one["deployments"][0]["age_s"]}]


def test_verify_json_reports_the_checks_it_ran(deployed: Deployed) -> None:
    image = deployed.record.image
    assert image
    done = shipyard("verify", image, "--bundle", str(deployed.bundle), "--engine", "podman", "--output", "json")
    document = json.loads(done.stdout)
    validate(document, "verify.v1.json")
    assert document["schema"] == "shipyard.verify/1" and document["image"] == image
    checks = {check["name"]: check for check in document["checks"]}
    assert checks["ping"]["status"] == "pass" and document["cold_start_s"] == checks["ping"]["value"]
    # the digits bundle's example.json holds instances and the in-process predictions: the check runs and passes
    assert checks["predictions"]["status"] == "pass", checks["predictions"]
    failed = [c for c in document["checks"] if c["status"] == "fail"]
    assert document["passed"] is True and not failed, failed
    assert done.returncode == 0, done.stderr


def test_cleanup_is_idempotent(own_deployment: Deployed) -> None:
    deployed = own_deployment
    state = str(deployed.state)
    container = deployed.record.one("container")
    assert container
    # A cleanup cut short earlier: it removed a second container and crashed before saving that.
    store = StateStore(deployed.state)
    record = deployed.record
    record.add("container", f"{container}-gone")
    store.put(record)

    first = shipyard("cleanup", deployed.name, "--state", state, timeout=600)
    assert first.returncode == 0, first.stderr
    assert f"deleted 1 (container {container})" in first.stdout
    assert f"already gone 1 (container {container}-gone)" in first.stdout
    assert subprocess.run(["podman", "container", "exists", container], check=False).returncode == 1
    assert store.get(deployed.name) is None

    again = shipyard("cleanup", deployed.name, "--state", state)
    assert again.returncode == 0, again.stderr  # was exit 3 "no deployment named ..."
    assert "nothing to clean up" in again.stdout and not again.stderr.strip()

    never = shipyard("cleanup", "never-deployed-here", "--state", state)
    assert never.returncode == 0 and "nothing to clean up: no deployment named 'never-deployed-here'" in never.stdout


def test_cleanup_of_a_record_whose_resources_are_gone(tmp_path: Path) -> None:
    """A record left behind (the container removed by hand, or the machine reset): cleanup forgets it, exit 0."""
    store = StateStore(tmp_path / "state.json")
    now = now_utc().isoformat()
    name = f"cli-{uuid.uuid4().hex[:6]}"
    store.put(
        Deployment(
            name=name, target="local", status="InService", source="bundle/", created_at=now, updated_at=now,
            url="http://127.0.0.1:1", resources=[Resource("container", f"shipyard-{name}-1")],
        )
    )  # fmt: skip
    done = shipyard("cleanup", name, "--state", str(store.path))
    assert done.returncode == 0, done.stderr
    assert f"{name}: nothing to clean up: already gone 1 (container shipyard-{name}-1)" in done.stdout
    assert "removed from the state file" in done.stdout and store.get(name) is None
