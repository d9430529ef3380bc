"""``deploy --async`` on the local target with the real image under Podman: the container runs with async's
limits, the queue process beside it answers ``predict_async`` with what the container answers, and cleanup
removes the queue, the container and the directory bucket. (The one podman test of the feature; the queue's
behaviour is in tests/deploy/test_async_queue.py against a real server without an image.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from infra.base_image import ensure_base_image
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.local import LocalTarget
from shipyard.deploy.options import AsyncInference
from shipyard.deploy.queue import is_queue
from shipyard.deploy.queue import local as queue_steps
from shipyard.deploy.state import StateStore

pytestmark = pytest.mark.integration


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Deployer]:
    store = StateStore(tmp_path / "state.json")
    target = LocalTarget(EngineImages("podman"), engine="podman", state_path=store.path)
    deployer = Deployer(store, targets={"local": target})
    yield deployer
    for record in deployer.state.all():
        deployer.cleanup(record.name)


def test_async_deploy_runs_the_image_with_a_queue_and_cleanup_removes_both(
    local: Deployer, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    options = DeployOptions(
        source=str(digits_bundle), name="digits-async", base_image=ensure_base_image(),
        asynchronous=AsyncInference(max_concurrent=2, invocation_timeout_s=1200),
    )  # fmt: skip
    endpoint = local.deploy(options)
    record = local.record("digits-async")
    container = record.one("container") or ""
    inspected = json.loads(subprocess.run(["podman", "inspect", container], capture_output=True, check=True).stdout)
    env = dict(item.split("=", 1) for item in inspected[0]["Config"]["Env"])
    assert (env["SAGEMAKER_MODEL_SERVER_TIMEOUT"], env["SAGEMAKER_MAX_PAYLOAD_IN_MB"]) == ("1200", "1024")

    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    handles = [endpoint.predict_async(digits_rows) for _ in range(3)]
    assert [h.result(timeout=60) for h in handles] == [expected] * 3
    bucket = Path(record.one(queue_steps.QUEUE_BUCKET) or "")
    assert sorted(p.name for p in (bucket / "output").iterdir()) == sorted(f"{h.inference_id}.out" for h in handles)
    assert local.refresh("digits-async").failure is None

    pid, port = (int(x) for x in (record.one(queue_steps.QUEUE) or "0@0").split("@"))
    from shipyard.deploy.queue import stop_queue

    assert stop_queue(pid, port)  # a queue that died: status says so
    failure = local.refresh("digits-async").failure or ""
    assert failure.startswith("the async queue") and "not running" in failure
    report = local.cleanup("digits-async")
    assert f"async queue {pid}" in report.already_gone and f"async directory {bucket}" in report.deleted
    assert not is_queue(pid) and not bucket.exists()
    assert subprocess.run(["podman", "container", "exists", container], check=False).returncode != 0
