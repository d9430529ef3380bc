"""The local target with real Podman containers of a real image built from the digits bundle."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from infra.base_image import ensure_base_image
from shipyard.deploy import Deployer, DeployOptions, Endpoint
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.local import LocalTarget
from shipyard.deploy.state import StateStore
from shipyard.errors import DeployFailed, NotDeployed, SpecError

pytestmark = pytest.mark.integration

SHIPYARD = str(Path(sys.executable).parent / "shipyard")


class Steps:
    def __init__(self) -> None:
        self.states: list[str] = []

    def step(self, message: str) -> None:
        pass

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        self.states.append(state)


@pytest.fixture(scope="module")
def base() -> str:
    return ensure_base_image()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployer]:
    steps = Steps()
    store = StateStore(tmp_path_factory.mktemp("state") / "state.json")
    target = LocalTarget(EngineImages("podman"), engine="podman", state_path=store.path)
    deployer = Deployer(store, targets={"local": target}, reporter=steps)
    yield deployer
    for record in deployer.state.all():
        deployer.cleanup(record.name)


def container_exists(name: str) -> bool:
    return subprocess.run(["podman", "container", "exists", name], check=False).returncode == 0


def broken_copy(bundle: Path, where: Path) -> Path:
    copy = where / "broken"
    shutil.copytree(bundle, copy)
    (copy / "model" / "model.joblib").write_bytes(b"this is not a joblib file")
    return copy


def test_deploy_invoke_status_logs_and_delete(
    local: Deployer, base: str, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    endpoint = local.deploy(DeployOptions(source=str(digits_bundle), name="digits-local", base_image=base))
    assert endpoint.status == "InService" and endpoint.url and endpoint.url.startswith("http://127.0.0.1:")
    assert local.reporter.states[-1] == "InService"  # type: ignore[attr-defined]
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    assert endpoint.predict(digits_rows) == expected
    # Many rows, split into requests of at most 7 through the deployment's transport (HTTP for local).
    many = digits_rows * 40
    chunks: list[int] = []
    assert endpoint.predict_all(many, max_items=7, on_results=lambda first, p: chunks.append(len(p))) == expected * 40
    assert chunks[0] == 16 and len(chunks) > 1 and max(chunks[1:]) <= 7  # the 16-row probe, then at most 7
    answer = local.invoke("digits-local", orjson.dumps({"instances": digits_rows[:1]}), content_type="application/json")
    assert orjson.loads(answer.body)["predictions"] == expected[:1]
    (row,) = local.status("digits-local")
    assert (row.status, row.target, row.hourly_usd) == ("InService", "local", 0.0)
    assert any("model loaded" in line for line in endpoint.logs(200))

    with pytest.raises(SpecError, match="already exists"):
        local.deploy(DeployOptions(source=str(digits_bundle), name="digits-local", base_image=base))

    container = endpoint.record.one("container")
    assert container and container_exists(container)
    report = endpoint.delete()
    assert report.deleted == [f"container {container}"]
    assert not container_exists(container)
    with pytest.raises(NotDeployed):
        local.record("digits-local")


def test_status_tells_the_truth_when_the_container_is_gone(local: Deployer, base: str, digits_bundle: Path) -> None:
    endpoint = local.deploy(DeployOptions(source=str(digits_bundle), name="digits-gone", base_image=base))
    container = endpoint.record.one("container")
    subprocess.run(["podman", "rm", "--force", container], check=True, capture_output=True)  # a reboot, say
    (row,) = local.status("digits-gone")
    assert row.status == "Deleted" and "gone" in (row.failure or "")
    report = local.cleanup("digits-gone")
    assert report.already_gone == [f"container {container}"]


def test_a_model_that_cannot_load_ends_failed_with_its_log(
    local: Deployer, base: str, digits_bundle: Path, tmp_path: Path
) -> None:
    broken = broken_copy(digits_bundle, tmp_path)
    with pytest.raises(DeployFailed) as raised:
        local.deploy(DeployOptions(source=str(broken), name="digits-broken", base_image=base, startup_timeout_s=120))
    failure = raised.value
    assert "exited with code 3" in str(failure) and "model could not be loaded" in str(failure)
    assert any("loading the model failed" in line for line in failure.log_tail)
    assert local.state.get("digits-broken") is None  # nothing left to clean up
    assert not container_exists("shipyard-digits-broken-1")


def test_a_failed_deploy_from_an_archive_leaves_no_staged_copy(
    local: Deployer, base: str, digits_bundle: Path, tmp_path: Path
) -> None:
    from shipyard.bundle.archive import pack

    archive = pack(broken_copy(digits_bundle, tmp_path), tmp_path / "broken.tar.gz")
    name = f"digits-broken-tar-{uuid.uuid4().hex[:6]}"
    with pytest.raises(DeployFailed, match="exited with code 3"):
        local.deploy(DeployOptions(source=str(archive), name=name, base_image=base, startup_timeout_s=120))
    assert local.state.get(name) is None  # nothing left to clean up: neither the container nor the copy
    assert not (local.state.path.parent / "local" / name).exists()
    assert not container_exists(f"shipyard-{name}-1")


def test_update_replaces_the_container_and_a_failed_update_keeps_the_old_one(
    local: Deployer, base: str, digits_bundle: Path, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    endpoint: Endpoint = local.deploy(DeployOptions(source=str(digits_bundle), name="digits-up", base_image=base))
    url = endpoint.url
    updated = local.update("digits-up", str(digits_bundle))
    assert updated.url == url and updated.record.one("container") == "shipyard-digits-up-2"
    assert not container_exists("shipyard-digits-up-1")
    assert updated.predict(digits_rows[:2]) == endpoint.predict(digits_rows[:2])

    with pytest.raises(DeployFailed, match="previous version is back"):
        local.update("digits-up", str(broken_copy(digits_bundle, tmp_path)), startup_timeout_s=120)
    again = local.get("digits-up")
    assert again.record.one("container") == "shipyard-digits-up-2" and again.status == "InService"
    assert len(again.predict(digits_rows[:2])) == 2
    again.delete()


def shipyard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=600, check=False)


def test_an_archive_is_staged_beside_the_state_file_per_version_and_cleanup_deletes_it(
    base: str, digits_bundle: Path, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    """A model.tar.gz is extracted for the container to mount, as SageMaker does, beside the state file that
    ``--state`` names (not in ~/.shipyard, which every other state file shares); that copy is cleanup's to delete."""
    from shipyard.bundle.archive import pack

    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_STATE"}  # only --state says where
    state = tmp_path / "elsewhere" / "state.json"
    name = f"digits-tar-{uuid.uuid4().hex[:6]}"  # other sessions may share this Podman
    where = ["--state", str(state)]
    archive = pack(digits_bundle, tmp_path / "model.tar.gz")
    try:
        done = shipyard("deploy", str(archive), "--name", name, "--base", base, "--engine", "podman", *where, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        endpoint = Deployer(StateStore(state)).get(name)
        (staged,) = [r.id for r in endpoint.record.of("model-dir")]
        assert staged == str(state.parent / "local" / name / "model-1")
        assert (Path(staged) / "shipyard.toml").is_file()
        assert len(endpoint.predict(digits_rows[:2])) == 2

        # version 2 gets its own copy; version 1's goes
        done = shipyard("deploy", "--update", name, str(archive), *where, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        updated = Deployer(StateStore(state)).get(name)
        assert [r.id for r in updated.record.of("model-dir")] == [staged.replace("model-1", "model-2")]
        assert not Path(staged).exists()

        done = shipyard("cleanup", name, *where, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"model directory {staged.replace('model-1', 'model-2')}" in done.stdout
        assert not (state.parent / "local" / name).exists()
        assert StateStore(state).get(name) is None
        done = shipyard("cleanup", name, *where, env=env)  # and again: nothing to do, no error
        assert done.returncode == 0 and "nothing to clean up" in done.stdout, done.stdout + done.stderr
    finally:
        Deployer(StateStore(state)).cleanup(name)  # whatever a failed assertion left (idempotent)


def test_a_staged_copy_has_the_modes_pack_gives_its_files(digits_bundle: Path, tmp_path: Path) -> None:
    """The copy the container mounts reads as the archive does: directories and executables 0755, other files
    0644 (one rule, bundle.archive.readable_mode), whatever modes the files had when they were written."""
    from shipyard.bundle.archive import pack
    from shipyard.deploy.images import ResolvedImage

    bundle = tmp_path / "bundle"
    shutil.copytree(digits_bundle, bundle)
    (bundle / "code" / "start.sh").write_text("#!/bin/sh\n")
    (bundle / "code" / "start.sh").chmod(0o700)  # executable, private
    (bundle / "model" / "model.joblib").chmod(0o600)  # what a library writing through mkstemp leaves
    bundle.chmod(0o700)  # not world-readable: staged even as a directory
    target = LocalTarget(EngineImages("podman"), engine="podman", state_path=tmp_path / "state.json")
    for source in (bundle, pack(bundle, tmp_path / "model.tar.gz")):
        staged, owned = target._model_dir(
            DeployOptions(source=str(source), name="modes"), ResolvedImage("i", source, False), 1
        )
        assert owned and staged == tmp_path / "local" / "modes" / "model-1"
        modes = {p.relative_to(staged).as_posix(): p.stat().st_mode & 0o777 for p in [staged, *staged.rglob("*")]}
        assert modes["."] == modes["code"] == modes["model"] == 0o755
        assert modes["code/start.sh"] == 0o755  # an executable stays one (it was made 0644 here before)
        assert modes["model/model.joblib"] == modes["shipyard.toml"] == 0o644
        assert {m for name, m in modes.items() if name not in ("code/start.sh",)} <= {0o755, 0o644}


def test_cleanup_of_a_name_without_a_record_suggests_the_close_ones(tmp_path: Path) -> None:
    """The state's names are read for the hint only when the name has no record (no engine is asked)."""
    from shipyard.deploy.state import Deployment, now_utc

    state = StateStore(tmp_path / "state.json")
    now = now_utc().isoformat()
    state.put(Deployment("digits-tar", "local", "InService", "b/", now, now))
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_STATE"}
    done = shipyard("cleanup", "digits-tarr", "--state", str(state.path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to clean up: no deployment named 'digits-tarr'" in done.stdout
    assert "did you mean digits-tar?" in " ".join(done.stdout.split())
    assert state.get("digits-tar") is not None  # untouched


def test_expose_invoke_via_api_health_unexpose_and_cleanup(
    local: Deployer, base: str, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    from shipyard.deploy.expose import ExposeOptions
    from shipyard.deploy.front import is_front

    local.deploy(DeployOptions(source=str(digits_bundle), name="digits-api", base_image=base))
    try:
        with pytest.raises(SpecError, match="SigV4") as raised:
            local.expose("digits-api", ExposeOptions(auth="iam"))
        assert raised.value.option == "auth"
        exposure, key = local.expose("digits-api", ExposeOptions.parse(rate=20, burst=40, quota="1000/day"))
        assert key and len(key) == 40 and key.isalnum() and local.api_key("digits-api") == key
        assert exposure.url == f"http://127.0.0.1:{exposure.front_port}/predict" and exposure.front_pid
        assert is_front(exposure.front_pid, exposure.front_port)
        key_file = Path(str(exposure.key_ref))
        assert key_file.stat().st_mode & 0o777 == 0o600
        record = local.record("digits-api")
        assert record.one("front") == str(exposure.front_pid) and record.one("key-file") == str(key_file)
        expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
        body = orjson.dumps({"instances": digits_rows[:3]})
        for _ in range(5):
            answer = local.invoke("digits-api", body, content_type="application/json", via="api")
            assert orjson.loads(answer.body)["predictions"] == expected[:3]
        assert httpx.post(exposure.url, content=body).status_code == 403  # no key
        health = local.health("digits-api")
        assert health.invocations is not None and health.invocations >= 5
        assert health.p50_ms is not None and health.p99_ms is not None and 0 < health.p50_ms <= health.p99_ms
        assert health.alarms == [] and health.window == "since the container started"

        os.kill(exposure.front_pid, signal.SIGKILL)  # a front that died: status says so
        (row,) = local.status("digits-api")
        assert row.status == "InService" and "front" in (row.failure or "")
        local.update("digits-api", str(digits_bundle))  # the front follows the new container: same port and key
        moved = local.record("digits-api").exposure
        assert moved and moved.front_port == exposure.front_port and moved.front_pid != exposure.front_pid
        assert is_front(int(moved.front_pid or 0), moved.front_port) and local.api_key("digits-api") == key
        assert local.record("digits-api").one("front") == str(moved.front_pid)
        answer = local.invoke("digits-api", body, content_type="application/json", via="api")
        assert orjson.loads(answer.body)["predictions"] == expected[:3]
        exposure = moved

        assert local.unexpose("digits-api") == [f"front {exposure.front_pid}", f"key file {key_file}"]
        assert not is_front(exposure.front_pid) and not key_file.exists()
        assert local.unexpose("digits-api") == []  # idempotent
        exposure, _ = local.expose("digits-api", ExposeOptions(auth="api-key"))
        key_file = Path(str(exposure.key_ref))
    finally:
        report = local.cleanup("digits-api")
    assert f"front {exposure.front_pid}" in report.deleted and f"key file {key_file}" in report.deleted
    assert not is_front(int(exposure.front_pid or 0)) and not key_file.exists()


def test_transform_runs_the_real_image_for_a_bundle_and_removes_it(
    base: str, digits_bundle: Path, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    """``shipyard transform BUNDLE`` on the local target: the image built, its container started for the job
    (the model mounted at /opt/ml/model), its /execution-parameters read, every file transformed, and the
    container removed after."""
    from shipyard.deploy.transform import TransformOptions
    from shipyard.deploy.transform.local import run_local

    data = tmp_path / "in"
    (data / "day=1").mkdir(parents=True)
    (data / "a.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in digits_rows * 20))
    (data / "day=1" / "b.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in digits_rows))
    out = tmp_path / "out"
    before = subprocess.run(["podman", "ps", "-aq"], capture_output=True, text=True, check=True).stdout.split()
    options = TransformOptions(str(digits_bundle), str(data), str(out), base_image=base, workers=2, max_payload_mb=1)
    result = run_local(options, engine="podman")
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    assert result.failed == [] and result.settings.max_concurrent == 2  # the container's workers
    assert [int(x) for x in (out / "a.csv.out").read_text().splitlines()] == expected * 20
    assert [int(x) for x in (out / "day=1" / "b.csv.out").read_text().splitlines()] == expected
    after = subprocess.run(["podman", "ps", "-aq"], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(after) == sorted(before)  # the job's container is gone
