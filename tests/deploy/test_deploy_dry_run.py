"""``deploy --target sagemaker --dry-run`` through the real CLI: with AWS unreachable, without credentials or
without a region it still prints the plan and its cost, and says what was not checked; with both (moto) it
checks against AWS as before."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import shipyard
from infra.moto import ACCOUNT

pytestmark = pytest.mark.integration


@pytest.fixture
def unreachable() -> Iterator[str]:
    """An endpoint URL on which nothing listens, so a connection is refused at once.

    The port is one the kernel hands out (a fixed one such as 9, discard, may be in use on a shared machine), and
    the socket stays bound, never listening, for the whole test: no other process can take the port meanwhile.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def dry_run(bundle: Path, tmp_path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    # A machine without AWS configuration: no AWS_* variables, no credentials or config files, no instance metadata.
    settings = {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SHIPYARD_STATE": str(tmp_path / "state.json"),
        "COLUMNS": "200",
        **env,
    }
    args = ["deploy", str(bundle), "--name", "digits", "--target", "sagemaker", "--instance-count", "2", "--dry-run"]
    return shipyard(*args, *extra, env=settings, drop=("AWS_",), timeout=120)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "credentials",
    [{}, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}],
    ids=["no-credentials", "credentials"],
)
def test_unreachable_aws_still_gives_the_plan_and_its_cost(
    digits_bundle: Path, tmp_path: Path, credentials: dict[str, str], unreachable: str
) -> None:
    done = dry_run(digits_bundle, tmp_path, {"AWS_ENDPOINT_URL": unreachable, **credentials}, "--region", "us-east-1")
    assert done.returncode == 0, done.stderr  # was exit 5 "AWS is not reachable"
    text = one_line(done.stdout)
    assert "dry run: nothing is created" in text and "167.90" in text  # 2 × $0.115 × 730 h
    assert "SageMaker endpoint" in text and "sagemaker-us-east-1-ACCOUNT" in text
    assert "credentials were not checked" in text
    reason = "AWS is not reachable" if credentials else "no AWS credentials found"
    assert reason in text
    assert not (tmp_path / "state.json").exists()  # nothing recorded


def test_no_region_plans_with_a_placeholder(digits_bundle: Path, tmp_path: Path, unreachable: str) -> None:
    done = dry_run(digits_bundle, tmp_path, {"AWS_ENDPOINT_URL": unreachable})
    assert done.returncode == 0, done.stderr
    text = one_line(done.stdout)
    assert "167.90" in text and "sagemaker-REGION-ACCOUNT" in text
    assert "credentials were not checked" in text and "no AWS region given" in text


def test_with_credentials_and_aws_the_plan_is_checked(aws: object, digits_bundle: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # the aws fixture's moto settings
    done = dry_run(digits_bundle, tmp_path, env, "--region", "us-east-1")
    assert done.returncode == 0, done.stderr
    text = one_line(done.stdout)
    assert f"sagemaker-us-east-1-{ACCOUNT}" in text and "167.90" in text  # the account, from STS
    assert "not checked" not in text
    # ... and it still stops on what AWS says: here, an endpoint of that name that Shipyard did not make.
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "x"}, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r")
    variant = {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="digits", EndpointConfigName="c")
    refused = dry_run(digits_bundle, tmp_path, env, "--region", "us-east-1")
    assert refused.returncode == 2 and "already exists in us-east-1" in one_line(refused.stderr)
