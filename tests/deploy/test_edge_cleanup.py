"""Everything around an endpoint, then ``cleanup``: the account is left as it was.

A sagemaker deployment with autoscaling, alarms, an email-notified topic, a dashboard and a public API with a key
is made against the moto server, then cleaned up. What is left is read by listing every service touched, every
item whatever its tags or name (not through Shipyard's state, nor through its tags): nothing may remain but the
S3 bucket (the account's shared SageMaker bucket, which Shipyard never deletes) and the secret the test made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from deploy.test_deploy_sagemaker import make, spec
from infra.oci_registry import OciRegistry
from shipyard.deploy.expose import ExposeOptions, Quota
from shipyard.deploy.options import Autoscale

pytestmark = pytest.mark.integration


def account_contents() -> dict[str, list[Any]]:
    """Every item of every service a deployment touches, in moto, by service."""
    sm, iam, apigw = boto3.client("sagemaker"), boto3.client("iam"), boto3.client("apigateway")
    cloudwatch, sns, s3 = boto3.client("cloudwatch"), boto3.client("sns"), boto3.client("s3")
    objects = [
        f"{bucket['Name']}/{item['Key']}"
        for bucket in s3.list_buckets()["Buckets"]
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
    ]
    return {
        "sagemaker endpoints": sm.list_endpoints()["Endpoints"],
        "sagemaker endpoint configs": sm.list_endpoint_configs()["EndpointConfigs"],
        "sagemaker models": sm.list_models()["Models"],
        "ecr repositories": boto3.client("ecr").describe_repositories()["repositories"],
        "s3 objects": objects,
        "iam roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["Path"] != "/aws-service-role/"],
        "log groups": boto3.client("logs").describe_log_groups()["logGroups"],
        "scalable targets": boto3.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker"
        )["ScalableTargets"],
        "rest apis": apigw.get_rest_apis()["items"],
        "usage plans": apigw.get_usage_plans()["items"],
        "api keys": apigw.get_api_keys()["items"],
        "secrets": [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]],
        "alarms": cloudwatch.describe_alarms()["MetricAlarms"],
        "dashboards": cloudwatch.list_dashboards()["DashboardEntries"],
        "sns topics": sns.list_topics()["Topics"],
        "sns subscriptions": sns.list_subscriptions()["Subscriptions"],
    }


def test_cleanup_leaves_no_resource_of_a_deployment_with_alarms_topic_dashboard_and_public_api(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    boto3.client("secretsmanager").create_secret(Name="db/password", SecretString="x")
    before = account_contents()
    assert before["secrets"] == ["db/password"] and not any(v for k, v in before.items() if k != "secrets")

    deployer, _target, _steps = make(state_path)
    deployer.deploy(
        spec(
            digits_bundle,
            small_image,
            registry,
            instance_count=1,
            autoscale=Autoscale(minimum=1, maximum=3, max_rps=20.0),
            notify="oncall@example.com",
            data_capture_pct=10,
        )
    )
    deployer.expose("digits", ExposeOptions(auth="api-key", quota=Quota(1000, "DAY")))
    during = account_contents()
    for service in ("alarms", "dashboards", "sns topics", "sns subscriptions", "rest apis", "usage plans", "api keys"):
        assert during[service], f"the deployment made no {service}"
    assert len(during["iam roles"]) == 2  # the endpoint's execution role and the API's role
    assert sorted(during["secrets"]) == ["db/password", "shipyard/digits/api-key"]

    report = deployer.cleanup("digits")
    assert report.forgotten
    after = account_contents()
    assert after["secrets"] == ["db/password"]
    left = {service: items for service, items in after.items() if items and service != "secrets"}
    assert left == {}
    assert deployer.state.get("digits") is None
