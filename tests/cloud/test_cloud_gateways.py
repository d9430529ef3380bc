"""Each AWS gateway against a real moto server: the settings it applies, idempotent deletes, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from shipyard.cloud import Aws
from shipyard.cloud.autoscaling import AutoscalingGateway
from shipyard.cloud.ecr import EcrGateway, lifecycle_policy
from shipyard.cloud.iam import IamGateway, sagemaker_trust_policy
from shipyard.cloud.logs import LogsGateway
from shipyard.cloud.s3 import S3Gateway
from shipyard.cloud.sagemaker import SageMakerGateway
from shipyard.cloud.secrets import SecretsGateway
from shipyard.errors import SpecError

pytestmark = pytest.mark.integration

TAGS = [{"Key": "shipyard:deployment", "Value": "demo"}]


def test_iam_role_created_adopted_and_deleted_idempotently(aws: object) -> None:
    gateway = IamGateway(Aws("us-east-1"))
    trust = sagemaker_trust_policy("123456789012")
    arn = gateway.create_role("shipyard-demo", trust=trust, path="/shipyard/", tags=TAGS, description="d")
    assert arn == "arn:aws:iam::123456789012:role/shipyard/shipyard-demo"
    # A resumed deploy finds the role and adopts it instead of failing.
    assert gateway.create_role("shipyard-demo", trust=trust, path="/shipyard/", tags=TAGS, description="d") == arn
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/k/*"}],
    }
    gateway.put_policy("shipyard-demo", "p", policy)
    assert gateway.get_policy("shipyard-demo", "p") == policy
    assert gateway.tags("shipyard-demo") == {"shipyard:deployment": "demo"}
    assert gateway.roles("/shipyard/") == ["shipyard-demo"]
    role = boto3.client("iam").get_role(RoleName="shipyard-demo")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert gateway.delete_role("shipyard-demo") is True
    assert gateway.delete_role("shipyard-demo") is False
    assert gateway.role_arn("shipyard-demo") is None


def test_ecr_repository_settings_images_and_login(aws: object) -> None:
    gateway = EcrGateway(Aws("us-east-1"))
    repo = gateway.create_repository("shipyard/demo", tags=TAGS, keep_images=5)
    assert repo.uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/shipyard/demo"
    described = gateway.describe("shipyard/demo")
    assert described is not None
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert described["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert gateway.lifecycle("shipyard/demo") == lifecycle_policy(5)
    assert gateway.tags(repo.arn) == {"shipyard:deployment": "demo"}
    assert gateway.create_repository("shipyard/demo", tags=TAGS).arn == repo.arn  # adopted

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": 2,
                "digest": "sha256:" + "a" * 64,
            },
            "layers": [],
        }
    )
    assert not gateway.has_image("shipyard/demo", "v1")
    digest = gateway.put_manifest("shipyard/demo", "v1", manifest, "application/vnd.oci.image.manifest.v1+json")
    assert digest.startswith("sha256:")
    assert gateway.has_image("shipyard/demo", "v1")
    # Immutable tags: recording the same tag again answers with the existing digest instead of failing.
    assert gateway.put_manifest("shipyard/demo", "v1", manifest, "application/vnd.oci.image.manifest.v1+json") == digest

    login = gateway.login()
    assert login.host == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert login.username == "AWS" and login.password
    assert login.password not in repr(login)

    assert gateway.delete_repository("shipyard/demo") is True
    assert gateway.delete_repository("shipyard/demo") is False
    assert gateway.images("shipyard/demo") == []


def test_s3_bucket_private_and_objects_encrypted_and_tagged(aws: object, tmp_path: Path) -> None:
    gateway = S3Gateway(Aws("us-east-1"))
    assert not gateway.bucket_exists("bucket-one")
    gateway.create_bucket("bucket-one")
    assert gateway.bucket_exists("bucket-one")
    client = boto3.client("s3")
    block = client.get_public_access_block(Bucket="bucket-one")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = client.get_bucket_encryption(Bucket="bucket-one")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"x" * 1000)
    uri = gateway.upload(artifact, "bucket-one", "shipyard/demo/1/model.tar.gz", tags={"shipyard:deployment": "demo"})
    assert uri == "s3://bucket-one/shipyard/demo/1/model.tar.gz"
    head = gateway.head("bucket-one", "shipyard/demo/1/model.tar.gz")
    assert head is not None and head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == 1000
    assert gateway.object_tags("bucket-one", "shipyard/demo/1/model.tar.gz") == {"shipyard:deployment": "demo"}
    gateway.upload(artifact, "bucket-one", "shipyard/demo/2/model.tar.gz", tags={})
    gateway.upload(artifact, "bucket-one", "shipyard/other/1/model.tar.gz", tags={})
    assert gateway.delete_prefix("bucket-one", "shipyard/demo/") == 2
    assert gateway.keys("bucket-one", "shipyard/") == ["shipyard/other/1/model.tar.gz"]
    assert gateway.delete_prefix("bucket-one", "shipyard/demo/") == 0
    assert gateway.delete_prefix("no-such-bucket", "x/") == 0


def test_log_group_retention_tags_tail_and_delete(aws: object) -> None:
    gateway = LogsGateway(Aws("us-east-1"))
    group = "/aws/sagemaker/Endpoints/demo"
    gateway.create_group(group, retention_days=30, tags={"shipyard:deployment": "demo"})
    gateway.create_group(group, retention_days=14, tags={"shipyard:deployment": "demo"})  # adopted, retention set
    described = gateway.describe(group)
    assert described is not None and described["retentionInDays"] == 14
    assert gateway.tags(group) == {"shipyard:deployment": "demo"}
    client = boto3.client("logs")
    client.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-0abc")
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName="AllTraffic/i-0abc",
        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(5)],
    )
    tail = gateway.tail(group, 2)
    assert [e.message for e in tail] == ["line 3", "line 4"]
    assert tail[0].stream == "AllTraffic/i-0abc"
    assert gateway.tail("/aws/sagemaker/Endpoints/none", 5) == []
    assert gateway.delete_group(group) is True
    assert gateway.delete_group(group) is False


def test_autoscaling_target_and_policy(aws: object) -> None:
    gateway = AutoscalingGateway(Aws("us-east-1"))
    gateway.attach(
        "demo", "AllTraffic", minimum=1, maximum=4, target_invocations_per_minute=300, policy_name="p", tags={}
    )
    target = gateway.target("demo", "AllTraffic")
    assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    (policy,) = gateway.policies("demo", "AllTraffic")
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 300.0
    assert config["PredefinedMetricSpecification"] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert gateway.detach("demo", "AllTraffic") is True
    assert gateway.target("demo", "AllTraffic") is None
    assert gateway.detach("demo", "AllTraffic") is False


def test_secret_arn_and_missing_secret(aws: object) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="db/password", SecretString="s3cret")["ARN"]
    gateway = SecretsGateway(Aws("us-east-1"))
    assert gateway.arn("db/password") == arn
    with pytest.raises(SpecError, match="no such secret"):
        gateway.arn("db/missing")


def test_sagemaker_resources_missing_ones_and_invoke(aws: object) -> None:
    gateway = SageMakerGateway(Aws("us-east-1"))
    assert gateway.describe_endpoint("demo") is None
    gateway.create_model(
        "demo-1",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/shipyard/demo:1",
        role_arn="arn:aws:iam::123456789012:role/shipyard/shipyard-demo",
        model_data_url="s3://b/k",
        environment={"A": "1"},
        tags=TAGS,
    )
    gateway.create_endpoint_config(
        "demo-1",
        variant={
            "VariantName": "AllTraffic",
            "ModelName": "demo-1",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        },
        data_capture=None,
        tags=TAGS,
    )
    arn = gateway.create_endpoint("demo", config="demo-1", tags=TAGS)
    assert gateway.tags(arn) == {"shipyard:deployment": "demo"}
    assert [e["EndpointName"] for e in gateway.list("endpoints")] == ["demo"]
    assert gateway.describe_model("demo-1")["PrimaryContainer"]["Environment"] == {"A": "1"}  # type: ignore[index]

    answer = gateway.invoke("demo", b'{"instances": [[1]]}', content_type="application/json")
    assert isinstance(answer.body, bytes) and answer.seconds >= 0

    assert gateway.delete_endpoint("demo") and not gateway.delete_endpoint("demo")
    assert gateway.delete_endpoint_config("demo-1") and not gateway.delete_endpoint_config("demo-1")
    assert gateway.delete_model("demo-1") and not gateway.delete_model("demo-1")
