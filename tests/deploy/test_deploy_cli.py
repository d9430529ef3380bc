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

import shipyard
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

    # --output: the rows go in chunks through InvokeEndpoint (a 16-row probe, then --max-items 10) and the
    # answers are written in input order. moto hands out the queued bodies in the order the chunks arrive.
    chunks = [(0, 16), (16, 26), (26, 36)]
    httpx.post(
        f"{aws.url}/moto-api/static/sagemaker/endpoint-results",  # type: ignore[attr-defined]
        json={
            "results": [
                {"Body": orjson.dumps({"predictions": list(range(a, b))}).decode(), "ContentType": "application/json"}
                for a, b in chunks
            ]
        },
    ).raise_for_status()
    rows = tmp_path / "rows.json"
    rows.write_bytes(orjson.dumps([[float(i)] * 64 for i in range(36)]))
    output = tmp_path / "predictions.jsonl"
    chunked = run("invoke", "digits", "-d", str(rows), "-o", str(output), "--max-items", "10", "-c", "1")
    assert [orjson.loads(line) for line in output.read_bytes().splitlines()] == list(range(36))
    assert "36 rows in 3 requests" in chunked.stderr
    # The Python API takes the same path (in this process; the queued bodies are answered by request body).
    httpx.post(
        f"{aws.url}/moto-api/static/sagemaker/endpoint-results",  # type: ignore[attr-defined]
        json={"results": [{"Body": '{"predictions": [1, 2, 3]}', "ContentType": "application/json"}]},
    ).raise_for_status()
    assert shipyard.endpoint("digits", state=state_path).predict_all([[9.0] * 64] * 3) == [1, 2, 3]

    # bench measures a sagemaker endpoint through InvokeEndpoint too (moto answers at once, all 200).
    report_dir = tmp_path / "bench"
    options = ["--sizes", "1,4", "--repeats", "2", "-c", "1,3", "--duration", "0.5", "--no-plot", "--server-vcpus", "2"]
    measured = run("bench", "digits", "-d", str(rows), *options, "-o", str(report_dir))
    assert "closed loop with 3 concurrent clients" in measured.stderr
    report = orjson.loads((report_dir / "report.json").read_bytes())
    assert report["target"] == "sagemaker:digits"
    assert [level["level"] for level in report["sweep"]] == [1, 3]
    assert all(level["requests"] > 0 and not level["errors"] for level in report["sweep"])

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
    assert kinds == {
        "role", "log-group", "ecr-repository", "s3-prefix", "model", "endpoint-config", "endpoint", "alarm",
        "dashboard", "ttl-schedule", "guard-role",  # --ttl 2h: the schedule that deletes the endpoint, its role
    }  # fmt: skip

    assert "nothing to clean up" in run("cleanup", "--expired").stdout  # 2 h are not over
    cleaned = run("cleanup", "--all")
    assert "digits: deleted 16" in cleaned.stdout  # and the 6 alarms, the dashboard, the TTL schedule and its role
    assert tagged_everywhere() == {}
    assert "no deployments" in run("status").stdout
