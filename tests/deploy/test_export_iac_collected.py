"""The CDK and Terraform checks of test_export_iac on the Stack collected from a real digits deploy on moto
(alarms, an email topic, autoscaling, data capture, a public API with a key): the same ``check_cdk`` and
``check_terraform``, through ``Deployer.export`` as the CLI calls it. It runs once collect (and its test's
``deployed``) is on the branch, and is skipped before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.test_export_iac import check_cdk, check_terraform, synthesize
from infra.oci_registry import OciRegistry

collect = pytest.importorskip("shipyard.deploy.export.collect").collect
deployed = pytest.importorskip("deploy.test_export").deployed

pytestmark = pytest.mark.integration


def test_the_collected_stack_writes_a_cdk_app_and_terraform_that_pass_the_checks(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    deployer, target = deployed(state_path, digits_bundle, small_image, registry)
    record = deployer.record("digits")
    stack = collect(target.context_of(record), record)
    check_terraform(stack, tmp_path / "tf-checked")
    check_cdk(stack, synthesize(stack, tmp_path / "cdk-checked"))
    # the path the CLI takes: Deployer.export with the format's writer
    terraform = deployer.export("digits", "terraform", tmp_path / "tf")
    assert [f.name for f in terraform] == ["main.tf", "variables.tf", "imports.tf", "outputs.tf"]
    assert "aws_sagemaker_endpoint.endpoint" in (tmp_path / "tf" / "imports.tf").read_text()
    cdk = deployer.export("digits", "cdk", tmp_path / "cdk")
    assert [f.name for f in cdk] == ["app.py", "cdk.json", "requirements.txt"]
    assert json.loads((tmp_path / "cdk" / "cdk.json").read_text())["app"] == "python3 app.py"
