"""``expose`` on the sagemaker target against a moto server, after a real deploy (images pushed to a local
registry), every setting read back with boto3; ``unexpose`` and ``cleanup`` leave nothing in any service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from cloud.test_signing import Received, server  # noqa: F401 - the fixture
from deploy.test_deploy_sagemaker import make, spec, tagged_everywhere
from infra.cli import shipyard
from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer, error
from shipyard.cloud.apigateway import MODEL_ERROR_TEMPLATE, PASSED_STATUSES, selection_pattern
from shipyard.deploy import Deployer
from shipyard.deploy.expose import ExposeOptions, Quota
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.errors import CloudError

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
TAGS = {"shipyard:deployment": "digits"}
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/digits"


def deployed(state_path: Path, bundle: Path, image: str, registry: OciRegistry) -> tuple[Deployer, SageMakerTarget]:
    deployer, target, _ = make(state_path)
    deployer.deploy(spec(bundle, image, registry))
    return deployer, target


def api_everything() -> dict[str, list[Any]]:
    """Everything of the public API's services in moto, whatever its tags (what unexpose must empty)."""
    apigw, secrets, iam = boto3.client("apigateway"), boto3.client("secretsmanager"), boto3.client("iam")
    return {
        "rest_apis": apigw.get_rest_apis()["items"],
        "usage_plans": apigw.get_usage_plans()["items"],
        "api_keys": apigw.get_api_keys()["items"],
        "secrets": secrets.list_secrets()["SecretList"],
        "api_roles": [r for r in iam.list_roles()["Roles"] if r["RoleName"].endswith(".api")],
    }


def assert_api_read_back(record_exposure: Any) -> None:
    apigw = boto3.client("apigateway")
    api_id = record_exposure.api_id
    api = apigw.get_rest_api(restApiId=api_id)
    assert api["name"] == "shipyard-digits"
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert api["binaryMediaTypes"] == ["*/*"]
    assert api["tags"] == TAGS
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert sorted(resources) == ["/", "/v2", "/v2/score"]  # nested segments, one resource each
    resource = resources["/v2/score"]["id"]
    method = apigw.get_method(restApiId=api_id, resourceId=resource, httpMethod="POST")
    assert (method["authorizationType"], method["apiKeyRequired"]) == ("NONE", True)
    assert method["requestParameters"] == {
        "method.request.header.Content-Type": False,
        "method.request.header.Accept": False,
    }
    integration = method["methodIntegration"]
    assert integration["type"] == "AWS" and integration["httpMethod"] == "POST"
    assert integration["uri"] == f"arn:aws:apigateway:{REGION}:runtime.sagemaker:path//endpoints/digits/invocations"
    assert integration["credentials"] == f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-digits.api"
    assert integration["credentials"] == record_exposure.role_arn
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH"
    assert integration["timeoutInMillis"] == 29000
    assert integration["requestParameters"] == {
        "integration.request.header.Content-Type": "method.request.header.Content-Type",
        "integration.request.header.Accept": "method.request.header.Accept",
    }
    assert "contentHandling" not in integration or integration["contentHandling"] is None  # bytes pass as they are
    statuses = ["200", *PASSED_STATUSES]
    assert sorted(method["methodResponses"]) == sorted(statuses)
    for status in statuses:
        assert method["methodResponses"][status]["responseParameters"] == {"method.response.header.Content-Type": False}
        response = integration["integrationResponses"][status]
        assert response["statusCode"] == status
        assert response["responseParameters"] == {
            "method.response.header.Content-Type": "integration.response.header.Content-Type"
        }
        model_error = status == "424"  # InvokeEndpoint's ModelError: the container's own 4xx/5xx inside
        assert response["contentHandling"] == ("CONVERT_TO_TEXT" if model_error else "CONVERT_TO_BINARY")
        assert response.get("responseTemplates", {}) == (
            {"application/json": MODEL_ERROR_TEMPLATE} if model_error else {}
        )
        assert response.get("selectionPattern") == (None if status == "200" else selection_pattern(status))
    assert integration["integrationResponses"]["400"]["selectionPattern"] == r"4(?!03|04|13|15|24|29)\d{2}"
    stage = apigw.get_stage(restApiId=api_id, stageName="v1")
    assert stage["tags"] == TAGS
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 20.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 40
    deployments = apigw.get_deployments(restApiId=api_id)["items"]
    assert [d["id"] for d in deployments] == [stage["deploymentId"]]


def assert_key_read_back(exposure: Any, key: str | None) -> None:
    apigw = boto3.client("apigateway")
    (plan,) = apigw.get_usage_plans()["items"]
    assert plan["id"] == exposure.usage_plan_id and plan["name"] == "shipyard-digits"
    assert plan["apiStages"] == [{"apiId": exposure.api_id, "stage": "v1"}]
    assert plan["throttle"] == {"rateLimit": 20.0, "burstLimit": 40}
    assert plan["quota"] == {"limit": 5000, "period": "DAY", "offset": 0} or plan["quota"] == {
        "limit": 5000,
        "period": "DAY",
    }
    assert plan["tags"] == TAGS
    stored = apigw.get_api_key(apiKey=exposure.key_id, includeValue=True)
    assert stored["enabled"] is True and stored["name"] == "shipyard-digits" and stored["tags"] == TAGS
    assert stored["value"] == key
    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [(k["id"], k["type"]) for k in keys] == [(exposure.key_id, "API_KEY")]
    secrets = boto3.client("secretsmanager")
    assert exposure.key_ref == "shipyard/digits/api-key"
    assert secrets.get_secret_value(SecretId="shipyard/digits/api-key")["SecretString"] == key
    tags = secrets.describe_secret(SecretId="shipyard/digits/api-key")["Tags"]
    assert tags == [{"Key": "shipyard:deployment", "Value": "digits"}]


def assert_role_read_back() -> None:
    iam = boto3.client("iam")
    role = iam.get_role(RoleName="shipyard-digits.api")["Role"]
    assert role["Path"] == "/shipyard/"
    assert role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    assert iam.list_role_policies(RoleName="shipyard-digits.api")["PolicyNames"] == ["shipyard-invoke-endpoint"]
    assert iam.list_attached_role_policies(RoleName="shipyard-digits.api")["AttachedPolicies"] == []
    document = iam.get_role_policy(RoleName="shipyard-digits.api", PolicyName="shipyard-invoke-endpoint")
    assert document["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "InvokeEndpoint", "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": ENDPOINT_ARN}
        ],
    }
    described = boto3.client("sagemaker").describe_endpoint(EndpointName="digits")["EndpointArn"]
    assert described == ENDPOINT_ARN  # the policy names the endpoint's own ARN
    assert iam.list_role_tags(RoleName="shipyard-digits.api")["Tags"] == [
        {"Key": "shipyard:deployment", "Value": "digits"}
    ]


def test_expose_creates_the_api_exactly_and_unexpose_then_cleanup_leave_nothing(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target = deployed(state_path, digits_bundle, small_image, registry)
    before = target.aws(REGION).calls.copy()
    options = ExposeOptions(auth="api-key", rate=20.0, burst=40, quota=Quota(5000, "DAY"), path="/v2/score")
    exposure, key = deployer.expose("digits", options)
    calls = target.aws(REGION).calls - before
    print("expose calls:", dict(calls), sum(calls.values()))

    assert key and len(key) >= 20
    api_id = exposure.api_id or ""
    assert exposure.url == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/v1/v2/score"
    assert (exposure.auth, exposure.rate, exposure.burst, exposure.quota) == ("api-key", 20.0, 40, "5000/day")
    record = deployer.record("digits")
    assert record.exposure == exposure
    kinds = {(r.kind, r.id) for r in record.resources if r.kind.startswith(("api", "rest", "usage"))}
    assert kinds == {
        ("api-role", "shipyard-digits.api"),
        ("rest-api", api_id),
        ("api-key", exposure.key_id),
        ("usage-plan", exposure.usage_plan_id),
        ("api-key-secret", "shipyard/digits/api-key"),
    }
    assert_api_read_back(exposure)
    assert_key_read_back(exposure, key)
    assert_role_read_back()
    assert deployer.api_key("digits") == key
    transport = deployer.transport("digits", via="api")
    assert transport.url == exposure.url  # type: ignore[attr-defined]
    transport.close()
    assert calls["apigateway:CreateRestApi"] == 1 and calls["iam:CreateRole"] == 1

    deleted = deployer.unexpose("digits")
    assert sorted(d.split()[0] for d in deleted) == sorted(
        ["usage-plan", "api-key", "rest-api", "api-key-secret", "api-role"]
    )
    assert api_everything() == {"rest_apis": [], "usage_plans": [], "api_keys": [], "secrets": [], "api_roles": []}
    assert deployer.record("digits").exposure is None
    assert deployer.unexpose("digits") == []  # nothing left: no error

    deployer.expose("digits", ExposeOptions(auth="api-key"))  # exposed again, then cleaned up with the rest
    assert len(api_everything()["rest_apis"]) == 1
    deployer.cleanup("digits")
    assert api_everything() == {"rest_apis": [], "usage_plans": [], "api_keys": [], "secrets": [], "api_roles": []}
    assert tagged_everywhere() == {}
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize(("auth", "authorization"), [("iam", "AWS_IAM"), ("none", "NONE")])
def test_iam_and_none_make_no_key_plan_or_secret(
    aws: object,
    digits_bundle: Path,
    small_image: str,
    registry: OciRegistry,
    state_path: Path,
    auth: str,
    authorization: str,
) -> None:
    deployer, _ = deployed(state_path, digits_bundle, small_image, registry)
    exposure, key = deployer.expose("digits", ExposeOptions.parse(auth=auth))
    assert key is None and exposure.key_ref is None and exposure.usage_plan_id is None
    apigw = boto3.client("apigateway")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=exposure.api_id)["items"]}
    method = apigw.get_method(restApiId=exposure.api_id, resourceId=resources["/predict"], httpMethod="POST")
    assert (method["authorizationType"], method["apiKeyRequired"]) == (authorization, False)
    everything = api_everything()
    assert (everything["usage_plans"], everything["api_keys"], everything["secrets"]) == ([], [], [])
    assert deployer.api_key("digits") is None
    deployer.unexpose("digits")
    assert api_everything() == {"rest_apis": [], "usage_plans": [], "api_keys": [], "secrets": [], "api_roles": []}


def test_a_failure_half_way_removes_what_expose_made(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """CreateUsagePlan is scripted to fail (AWS refusing it; moto would accept), after the role, the REST API
    and the key exist: all three are removed, the record keeps none of them, and the error says so."""
    deployer, target = deployed(state_path, digits_bundle, small_image, registry)
    client = target.aws(REGION).client("apigateway")
    answer(client, "CreateUsagePlan", error("LimitExceededException", "too many usage plans", 429))
    with pytest.raises(CloudError, match=r"expose digits failed: .*too many usage plans.*what it had made is removed"):
        deployer.expose("digits", ExposeOptions())
    assert api_everything() == {"rest_apis": [], "usage_plans": [], "api_keys": [], "secrets": [], "api_roles": []}
    record = deployer.record("digits")
    assert record.exposure is None
    assert not [r for r in record.resources if r.kind in ("api-role", "rest-api", "api-key", "usage-plan")]
    assert record.status == "InService"  # the deployment itself is untouched


def test_the_cli_exposes_and_unexposes_with_json(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    import jsonschema

    deployed(state_path, digits_bundle, small_image, registry)
    done = shipyard(
        "expose", "digits", "--rate", "10", "--burst", "20", "--quota", "1000/week", "--show-key",
        "--output", "json", "--state", str(state_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / "expose.v1.json").read_text()))
    assert document["schema"] == "shipyard.expose/1"
    assert (document["auth"], document["rate"], document["burst"], document["quota"]) == (
        "api-key",
        10,
        20,
        "1000/week",
    )
    stored = boto3.client("secretsmanager").get_secret_value(SecretId="shipyard/digits/api-key")["SecretString"]
    assert document["key"] == stored
    assert document["url"].endswith(".execute-api.us-east-1.amazonaws.com/v1/predict")
    assert "secretsmanager get-secret-value --secret-id shipyard/digits/api-key" in document["curl"]
    assert any(w.startswith("payload: ") for w in document["warnings"])
    assert stored not in done.stderr

    hidden = shipyard("unexpose", "digits", "--output", "json", "--state", str(state_path))
    assert hidden.returncode == 0, hidden.stderr
    removed = json.loads(hidden.stdout)
    jsonschema.validate(removed, json.loads((SCHEMAS / "unexpose.v1.json").read_text()))
    assert len(removed["deleted"]) == 5
    default = shipyard("expose", "digits", "--output", "json", "--state", str(state_path))
    assert json.loads(default.stdout)["quota"] == "100000/month"  # a key's default quota
    assert json.loads(default.stdout)["key"] is None  # no --show-key: the key is not printed
    assert shipyard("unexpose", "digits", "--state", str(state_path)).returncode == 0
    again = shipyard("expose", "digits", "--auth", "iam", "--state", str(state_path))
    assert again.returncode == 0, again.stderr
    assert "--aws-sigv4 'aws:amz:us-east-1:execute-api'" in again.stdout
    assert document["key"] not in again.stdout
    bad = shipyard("expose", "digits", "--auth", "iam", "--quota", "10/day", "--state", str(state_path))
    assert bad.returncode != 0 and "--quota" in bad.stderr


@pytest.mark.parametrize("auth", ["api-key", "iam", "none"])
def test_via_api_sends_the_key_or_a_sigv4_signature(
    aws: object,
    digits_bundle: Path,
    small_image: str,
    registry: OciRegistry,
    state_path: Path,
    server: tuple[str, Received],  # noqa: F811 - the fixture imported above
    auth: str,
) -> None:
    """``--via api`` as the target builds it, pointed at a real HTTP server on 127.0.0.1 in place of
    execute-api (which moto does not serve): the key from Secrets Manager in x-api-key, or a SigV4 signature
    for execute-api in this region."""
    deployer, _ = deployed(state_path, digits_bundle, small_image, registry)
    _, key = deployer.expose("digits", ExposeOptions.parse(auth=auth))
    url, received = server
    record = deployer.record("digits")
    assert record.exposure is not None
    record.exposure.url = f"{url}/v1/predict"
    deployer.state.put(record)
    reply = deployer.invoke("digits", b'{"inputs": [[0.0]]}', content_type="application/json", via="api")
    assert reply.status == 200
    (got,) = received.requests
    assert got["path"] == "/v1/predict"
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers.get("x-api-key") == key  # None unless api-key
    if auth == "iam":
        scope = headers["authorization"].split("Credential=")[1].split(",")[0].split("/")
        assert scope[2:] == [REGION, "execute-api", "aws4_request"]
    else:
        assert "authorization" not in headers


def test_reconcile_finds_the_public_api_so_cleanup_removes_it(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """``status --reconcile`` collects the REST API, usage plan and key by their tag, the role by its name and
    the secret by its name; a kept record keeps its exposure; a lost one is rebuilt without it, and cleanup
    still removes every part."""
    deployer, _ = deployed(state_path, digits_bundle, small_image, registry)
    exposure, _ = deployer.expose("digits", ExposeOptions())
    api_kinds = {"api-role", "rest-api", "api-key", "usage-plan", "api-key-secret"}

    deployer.reconcile(REGION)
    kept = deployer.record("digits")
    assert kept.exposure == exposure
    assert {(r.kind, r.id) for r in kept.resources if r.kind in api_kinds} == {
        ("api-role", "shipyard-digits.api"),
        ("rest-api", exposure.api_id),
        ("api-key", exposure.key_id),
        ("usage-plan", exposure.usage_plan_id),
        ("api-key-secret", "shipyard/digits/api-key"),
    }
    assert [r.id for r in kept.resources if r.kind == "role"] == ["shipyard-digits"]  # the API's role apart

    state_path.unlink()
    deployer.reconcile(REGION)
    rebuilt = deployer.record("digits")
    assert rebuilt.exposure is None
    assert {r.kind for r in rebuilt.resources} >= api_kinds
    deployer.cleanup("digits")
    assert api_everything() == {"rest_apis": [], "usage_plans": [], "api_keys": [], "secrets": [], "api_roles": []}
    assert tagged_everywhere() == {}


def test_the_policy_names_the_endpoint_lower_cased_as_sagemaker_writes_its_arns(aws: object) -> None:
    """SageMaker writes names lower-cased in its ARNs (moto keeps the case: it cannot show this)."""
    from shipyard.cloud import Aws
    from shipyard.deploy.sagemaker.context import Context
    from shipyard.deploy.sagemaker.expose import endpoint_arn, invoke_policy
    from shipyard.deploy.sagemaker.names import Names

    ctx = Context(Aws(REGION), Names("Digits-EU"))
    assert endpoint_arn(ctx, "Digits-EU") == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/digits-eu"
    (statement,) = invoke_policy(endpoint_arn(ctx, "Digits-EU"))["Statement"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
