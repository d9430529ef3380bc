"""The API Gateway, Secrets Manager and IAM parts of ``expose`` against a real moto server: what each call
leaves behind, and deletes that answer False for what is already gone."""

from __future__ import annotations

import boto3
import pytest

from shipyard.cloud import Aws
from shipyard.cloud.apigateway import ApiGatewayGateway, invoke_url, sagemaker_invoke_uri
from shipyard.cloud.iam import IamGateway, apigateway_trust_policy, sagemaker_trust_policy
from shipyard.cloud.secrets import SecretsGateway

pytestmark = pytest.mark.integration

TAGS = {"shipyard:deployment": "demo"}


def made(gateway: ApiGatewayGateway) -> tuple[str, str, str]:
    """An API with a stage, a usage plan on it and a key in the plan: their ids."""
    api = gateway.create_api("shipyard-demo", description="d", tags=TAGS)
    resource = gateway.create_path(api, "/a/b/c")
    gateway.put_post_method(api.id, resource, auth="iam")
    gateway.put_sagemaker_integration(
        api.id, resource, uri=sagemaker_invoke_uri("us-east-1", "demo"), role_arn="arn:aws:iam::123456789012:role/r"
    )
    gateway.put_responses(api.id, resource)
    gateway.deploy_stage(api.id, "v1", rate=2.5, burst=5, tags=TAGS, description="d")
    plan = gateway.create_usage_plan(
        "shipyard-demo", api_id=api.id, stage="v1", rate=2.5, burst=5, quota=None, tags=TAGS
    )
    key, value = gateway.create_api_key("shipyard-demo", tags=TAGS)
    gateway.add_key_to_plan(plan, key)
    assert len(value) >= 20
    return api.id, plan, key


def test_the_api_its_binary_types_its_nested_path_and_its_stage(aws: object) -> None:
    """moto drops binaryMediaTypes at create: the gateway adds */* with UpdateRestApi and reads it back."""
    gateway = ApiGatewayGateway(Aws("us-east-1"))
    api_id, plan, _ = made(gateway)
    client = boto3.client("apigateway")
    assert client.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["*/*"]
    paths = sorted(r["path"] for r in client.get_resources(restApiId=api_id)["items"])
    assert paths == ["/", "/a", "/a/b", "/a/b/c"]
    settings = client.get_stage(restApiId=api_id, stageName="v1")["methodSettings"]["*/*"]
    assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == (2.5, 5)
    assert client.get_usage_plan(usagePlanId=plan).get("quota") in (None, {})  # no --quota: none
    assert invoke_url(api_id, "us-east-1", "v1", "/a/b/c") == (
        f"https://{api_id}.execute-api.us-east-1.amazonaws.com/v1/a/b/c"
    )
    assert gateway.invoke_url(api_id, "v1", "/a/b/c") == invoke_url(api_id, "us-east-1", "v1", "/a/b/c")


def test_deletes_answer_true_then_false(aws: object) -> None:
    """moto answers a delete of a missing usage plan or REST API with a 500 (a KeyError inside): the gateway
    looks each up first, so both moto and AWS answer NotFound, which is False."""
    gateway = ApiGatewayGateway(Aws("us-east-1"))
    api_id, plan, key = made(gateway)
    assert gateway.delete_usage_plan(plan) is True
    assert gateway.delete_usage_plan(plan) is False
    assert gateway.delete_api_key(key) is True
    assert gateway.delete_api_key(key) is False
    assert gateway.delete_rest_api(api_id) is True
    assert gateway.delete_rest_api(api_id) is False
    client = boto3.client("apigateway")
    assert (client.get_rest_apis()["items"], client.get_usage_plans()["items"], client.get_api_keys()["items"]) == (
        [],
        [],
        [],
    )


def test_the_key_secret_is_created_read_replaced_and_deleted(aws: object) -> None:
    secrets = SecretsGateway(Aws("us-east-1"))
    arn = secrets.create("shipyard/demo/api-key", "first", description="d", tags=TAGS)
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:shipyard/demo/api-key")
    assert secrets.read("shipyard/demo/api-key") == "first"
    # a second expose after an interrupted one: the name exists, it gets the new value
    assert secrets.create("shipyard/demo/api-key", "second", description="d", tags=TAGS) == arn
    assert secrets.read("shipyard/demo/api-key") == "second"
    described = boto3.client("secretsmanager").describe_secret(SecretId="shipyard/demo/api-key")
    assert described["Tags"] == [{"Key": "shipyard:deployment", "Value": "demo"}]
    assert secrets.delete("shipyard/demo/api-key") is True
    assert secrets.delete("shipyard/demo/api-key") is False  # moto answers 200 here: the gateway looks first
    assert secrets.read("shipyard/demo/api-key") is None
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_the_api_role_trusts_api_gateway_alone(aws: object) -> None:
    """API Gateway alone may assume it, with no aws:SourceAccount condition (API Gateway's guide gives none, and
    one it did not meet would fail every call); the SageMaker role keeps its condition."""
    iam = IamGateway(Aws("us-east-1"))
    trust = apigateway_trust_policy("123456789012")
    iam.create_role("shipyard-demo-api", trust=trust, path="/shipyard/", tags=[], description="d")
    document = boto3.client("iam").get_role(RoleName="shipyard-demo-api")["Role"]["AssumeRolePolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "Condition" not in statement and statement["Action"] == "sts:AssumeRole"
    (sagemaker,) = sagemaker_trust_policy("123456789012")["Statement"]
    assert sagemaker["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_a_role_of_the_same_name_is_adopted_only_when_it_is_this_deployments(aws: object) -> None:
    """A resumed deploy adopts its own role; a role of another deployment (or nobody's) is refused untouched."""
    from shipyard.errors import SpecError

    iam, raw = IamGateway(Aws("us-east-1")), boto3.client("iam")
    trust = apigateway_trust_policy("123456789012")
    mine = [{"Key": "shipyard:deployment", "Value": "foo"}]
    first = iam.create_role("shipyard-foo.api", trust=trust, path="/shipyard/", tags=mine, description="d")
    assert iam.create_role("shipyard-foo.api", trust=trust, path="/shipyard/", tags=mine, description="d") == first
    raw.create_role(RoleName="shipyard-bar", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
                    Tags=[{"Key": "shipyard:deployment", "Value": "bar"}])  # fmt: skip
    with pytest.raises(SpecError, match="shipyard:deployment=bar"):
        iam.create_role("shipyard-bar", trust=trust, path="/shipyard/", tags=mine, description="d")
    untouched = raw.get_role(RoleName="shipyard-bar")["Role"]["AssumeRolePolicyDocument"]
    assert untouched["Statement"] == []


def test_the_api_role_never_bears_another_deployments_name() -> None:
    """``foo``'s API role cannot be the execution role of a deployment called ``foo-api``, nor its API role."""
    from shipyard.deploy.sagemaker.names import Names

    assert Names("foo").api_role == "shipyard-foo.api"
    assert Names("foo").api_role not in {Names("foo-api").role, Names("foo-api").api_role}
    long = Names("x" * 63)
    assert len(long.api_role) <= 64 and long.api_role.endswith(".api") and long.api_role != long.role


def test_a_throttled_delete_of_the_api_waits_and_tries_again(aws: object) -> None:
    """AWS's one DeleteRestApi per 30 s, which moto does not enforce: DeleteRestApi is scripted to answer
    TooManyRequestsException twice, then to pass on to moto (which deletes the API)."""
    from infra.scripted_aws import answer, error

    aws_ = Aws("us-east-1")
    gateway = ApiGatewayGateway(aws_)
    api_id, plan, _ = made(gateway)
    gateway.delete_usage_plan(plan)
    waits: list[float] = []
    gateway.sleep = waits.append
    throttled = error("TooManyRequestsException", "Too Many Requests", 429)
    real = boto3.client("apigateway")
    calls = answer(gateway.client, "DeleteRestApi", throttled, throttled, lambda p: real.delete_rest_api(**p))
    assert gateway.delete_rest_api(api_id) is True
    assert len(calls) == 3 and waits == [12.0, 12.0]
    assert real.get_rest_apis()["items"] == []


def test_the_model_error_template_reads_the_fields_invoke_endpoint_sends() -> None:
    """The container's 4xx/5xx reach API Gateway as InvokeEndpoint's 424 ModelError; the template reads its
    OriginalStatusCode and OriginalMessage, which botocore's own model of that error declares."""
    from botocore.session import get_session

    from shipyard.cloud.apigateway import MODEL_ERROR_TEMPLATE

    model = get_session().get_service_model("sagemaker-runtime")
    shape = model.shape_for("ModelError")
    assert shape.metadata["error"]["httpStatusCode"] == 424
    assert {"OriginalStatusCode", "OriginalMessage"} <= set(shape.members)
    assert "$context.responseOverride.status = $error.OriginalStatusCode" in MODEL_ERROR_TEMPLATE
    assert MODEL_ERROR_TEMPLATE.rstrip().endswith("$error.OriginalMessage")
