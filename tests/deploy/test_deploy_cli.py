"""The commands end to end (``shipyard deploy/status/invoke/logs/cleanup``) on the sagemaker target against
moto, including ``status --reconcile`` rebuilding a lost state file from the tags on AWS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from test_deploy_sagemaker import tagged_everywhere

from infra.oci_registry import OciRegistry

pytestmark = pytest.mark.integration

SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [SHIPYARD, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_sagemaker_commands(
    aws: object,
    digits_bundle: Path,
    small_image: str,
    registry: OciRegistry,
    state_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SHIPYARD_ECR_REGISTRY", registry.host)
    common = ["--target", "sagemaker", "--image", small_image, "--region", "us-east-1"]

    plan = run("deploy", str(digits_bundle), "--name", "digits", *common, "--instance-count", "2", "--dry-run")
    assert "dry run: nothing is created" in plan.stdout and "167.90" in plan.stdout  # 2 × $0.115 × 730 h
    assert tagged_everywhere() == {}

    bad = run("deploy", str(digits_bundle), "--name", "digits", *common, "--serverless", "512:5", ok=False)
    assert bad.returncode == 2 and "1024, 2048" in bad.stderr

    done = run("deploy", str(digits_bundle), "--name", "digits", *common, "--ttl", "2h")
    assert "InService digits on sagemaker" in done.stdout

    status = run("status")
    assert "digits" in status.stdout and "1 × ml.m5.large" in status.stdout and "0.115" in status.stdout
    assert "left" in status.stdout  # the TTL

    # invoke goes through sagemaker-runtime (moto answers with canned results it is given).
    httpx.post(
        f"{aws.url}/moto-api/static/sagemaker/endpoint-results",  # type: ignore[attr-defined]
        json={
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [{"Body": '{"predictions": [7]}', "ContentType": "application/json"}],
        },
    ).raise_for_status()
    request = tmp_path / "request.json"
    request.write_bytes(orjson.dumps({"instances": [[0.0] * 64]}))
    answer = run("invoke", "digits", "--data", str(request), "--raw")
    assert orjson.loads(answer.stdout) == {"predictions": [7]}

    logs = boto3.client("logs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/Endpoints/digits", logStreamName="AllTraffic/i-1")
    logs.put_log_events(
        logGroupName="/aws/sagemaker/Endpoints/digits",
        logStreamName="AllTraffic/i-1",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "model loaded"}],
    )
    assert "model loaded" in run("logs", "digits").stdout

    # The state file is lost: the tags on AWS rebuild it.
    state_path.unlink()
    rebuilt = run("status", "--reconcile", "--region", "us-east-1")
    assert "digits" in rebuilt.stdout and "InService" in rebuilt.stdout
    kinds = {r["kind"] for r in orjson.loads(state_path.read_bytes())["deployments"]["digits"]["resources"]}
    assert kinds == {"role", "log-group", "ecr-repository", "s3-prefix", "model", "endpoint-config", "endpoint"}

    assert "nothing to clean up" in run("cleanup", "--expired").stdout  # 2 h are not over
    cleaned = run("cleanup", "--all")
    assert "digits: deleted 7" in cleaned.stdout
    assert tagged_everywhere() == {}
    assert "no deployments" in run("status").stdout
