"""--secret: the server reads the secret at start with its own credentials (here: moto's) and exposes it to
the handler through os.environ; the value never reaches the log. The ``local`` target reads it on this
machine instead and hands it to a real container through the engine's environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import httpx
import pytest

from infra.base_image import ensure_base_image
from infra.server import ServerFactory
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.local import LocalTarget
from shipyard.deploy.options import SecretRef
from shipyard.deploy.state import StateStore

pytestmark = pytest.mark.integration

HANDLER = """
import json
import os


def model_fn(model_dir):
    return os.environ["DB_PASSWORD"]  # read at load time: the secret must be there before the model loads


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model):
    return {"password_length": len(model), "password": model}


def output_fn(prediction, accept):
    return json.dumps(prediction)
"""


def handler_bundle(root: Path) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text(HANDLER)
    return root


def test_the_handler_sees_the_secret_and_the_log_does_not(
    aws: object, running_server: ServerFactory, tmp_path: Path
) -> None:
    boto3.client("secretsmanager").create_secret(Name="prod/db-password", SecretString="s3cr3t-Value-42")
    server = running_server(
        handler_bundle(tmp_path / "bundle"), env={"SHIPYARD_SECRETS": "DB_PASSWORD=prod/db-password"}
    )
    answer = httpx.post(f"{server.url}/invocations", content=b"{}", headers={"content-type": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == {"password_length": 15, "password": "s3cr3t-Value-42"}
    loaded = server.wait_log(lambda line: line.get("message") == "secrets loaded")
    assert loaded["variables"] == ["DB_PASSWORD"]
    assert "s3cr3t-Value-42" not in server.log_text()


def test_a_missing_secret_stops_the_server_with_a_clear_message(
    aws: object, running_server: ServerFactory, tmp_path: Path
) -> None:
    # The server exits before it listens; the test fixture reports its log.
    with pytest.raises(AssertionError, match=r"exited with 1") as raised:
        running_server(handler_bundle(tmp_path / "bundle"), env={"SHIPYARD_SECRETS": "DB_PASSWORD=prod/none"})
    assert "cannot read the secret 'prod/none' (ResourceNotFoundException)" in str(raised.value)


def test_a_local_deploy_hands_the_secret_to_the_container(aws: object, tmp_path: Path) -> None:
    boto3.client("secretsmanager").create_secret(Name="prod/db-password", SecretString="s3cr3t-Value-42")
    state = tmp_path / "state.json"
    deployer = Deployer(StateStore(state), targets={"local": LocalTarget(EngineImages("podman"), engine="podman")})
    spec = DeployOptions(
        source=str(handler_bundle(tmp_path / "bundle")),
        name="secret-local",
        base_image=ensure_base_image(),
        secrets=(SecretRef.parse("DB_PASSWORD=prod/db-password"),),
    )
    endpoint = deployer.deploy(spec)
    try:
        assert endpoint.predict(b"{}") == {"password_length": 15, "password": "s3cr3t-Value-42"}
        assert "s3cr3t-Value-42" not in state.read_text()  # the state names the secret, never its value
        assert endpoint.record.secrets == ["DB_PASSWORD=prod/db-password"]
        container = endpoint.record.one("container")
        assert container is not None
        inspected = subprocess.run(
            ["podman", "inspect", "--format", "{{json .Config.CreateCommand}} {{json .Args}}", container],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "-e" in inspected.stdout and "DB_PASSWORD" in inspected.stdout  # the command that created it, read
        assert "s3cr3t-Value-42" not in inspected.stdout  # named there, its value not on the command line
    finally:
        endpoint.delete()
