"""API Gateway (REST APIs): the public API in front of an endpoint (``shipyard expose``): the API, its POST
method and SageMaker runtime integration, the stage, the usage plan and its API key.

The integration is an AWS service integration (``type=AWS``) that calls SageMaker's InvokeEndpoint with the
API's own role (``credentials``): ``POST arn:aws:apigateway:REGION:runtime.sagemaker:path//endpoints/NAME/
invocations``. Every media type is binary (``binaryMediaTypes=["*/*"]``), so a body of any content type
reaches the endpoint as the same bytes and its answer comes back as the same bytes; the Content-Type and
Accept headers are mapped through both ways.

Status codes: API Gateway picks an integration response by matching the backend's status against each
response's ``selectionPattern`` and answers with that response's fixed status, so the common ones are mapped
one by one to themselves (:data:`PASSED_STATUSES`). A 4xx that is not in that list becomes **400**, a 5xx that
is not in it becomes **500**, and anything else (2xx, 3xx) becomes **200** (the default response).

The container's own errors come through InvokeEndpoint as **424 ModelError**, with the container's status and body
inside (``OriginalStatusCode``, ``OriginalMessage``: botocore's ModelError shape). The 424 response turns that back
into the container's answer (:data:`MODEL_ERROR_TEMPLATE`: ``$context.responseOverride.status`` and the original
message as the body), so a caller sees the 400 or 500 the container sent, as the local front passes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws
from shipyard.errors import DeployError

__all__ = [
    "BINARY",
    "MODEL_ERROR_TEMPLATE",
    "PASSED_STATUSES",
    "TIMEOUT_MS",
    "ApiGatewayGateway",
    "invoke_url",
    "sagemaker_invoke_uri",
    "selection_pattern",
]

BINARY = "*/*"
TIMEOUT_MS = 29_000  # the most a REST API integration may take without a quota increase
PASSED_STATUSES = ("400", "403", "404", "413", "415", "424", "429", "500", "502", "503", "504")
# The 424 ModelError of InvokeEndpoint back to the container's own answer: its status and its body.
MODEL_ERROR_TEMPLATE = (
    "#set($error = $input.path('$'))\n"
    "#if($error.OriginalStatusCode != '')#set($context.responseOverride.status = $error.OriginalStatusCode)#end\n"
    "$error.OriginalMessage"
)
_CATCH_ALL = {"4": "400", "5": "500"}  # the status an unlisted 4xx / 5xx becomes
_HEADERS = ("Content-Type", "Accept")
DELETE_API_TRIES = 4
DELETE_API_WAIT_S = 12.0
_AUTHS = {"api-key": ("NONE", True), "iam": ("AWS_IAM", False), "none": ("NONE", False)}


def sagemaker_invoke_uri(region: str, endpoint: str, partition: str = "aws") -> str:
    """The integration URI of SageMaker's InvokeEndpoint on ``endpoint`` (a path override of the runtime)."""
    return f"arn:{partition}:apigateway:{region}:runtime.sagemaker:path//endpoints/{endpoint}/invocations"


def invoke_url(api_id: str, region: str, stage: str, path: str) -> str:
    """What callers POST to: ``https://ID.execute-api.REGION.amazonaws.com/STAGE/PATH``."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{path.strip('/')}"


def selection_pattern(status: str) -> str:
    """The pattern (a Java regex matched against the whole status) of one passed status: itself, or for a
    catch-all (400, 500) every status of its class but the other passed ones, so no two patterns overlap."""
    if status not in _CATCH_ALL.values():
        return status
    others = [s[1:] for s in PASSED_STATUSES if s[0] == status[0] and s != status]
    return rf"{status[0]}(?!{'|'.join(others)})\d{{2}}" if others else rf"{status[0]}\d{{2}}"


@dataclass(frozen=True)
class RestApi:
    id: str
    root_id: str  # the resource of "/"


class ApiGatewayGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("apigateway")
        self.sleep: Callable[[float], None] = time.sleep  # the tests' clock

    # -- the API and its one method -------------------------------------------------------------------
    def create_api(self, name: str, *, description: str, tags: Mapping[str, str]) -> RestApi:
        """A REGIONAL REST API whose every media type is binary: its id and its root resource's."""
        with aws_call(f"create the REST API {name}", self.aws.region):
            answer = self.client.create_rest_api(
                name=name,
                description=description,
                endpointConfiguration={"types": ["REGIONAL"]},
                binaryMediaTypes=[BINARY],
                apiKeySource="HEADER",
                tags=dict(tags),
            )
        api_id = str(answer["id"])
        if BINARY not in (answer.get("binaryMediaTypes") or []):
            self._set_binary(api_id)
        return RestApi(api_id, str(answer["rootResourceId"]))

    def _set_binary(self, api_id: str) -> None:
        """Add ``*/*`` after the fact (moto drops ``binaryMediaTypes`` at create), then read it back."""
        with aws_call(f"make every media type binary on the REST API {api_id}", self.aws.region):
            # AWS documents the type in the path ("/" escaped as "~1") and keeps binaryMediaTypes at create, so
            # this runs on moto only, which reads the type from "value" (without it, moto adds "").
            self.client.update_rest_api(
                restApiId=api_id,
                patchOperations=[{"op": "add", "path": "/binaryMediaTypes/*~1*", "value": BINARY}],
            )
            types = self.client.get_rest_api(restApiId=api_id).get("binaryMediaTypes") or []
        if BINARY not in types:
            raise DeployError(f"the REST API {api_id} did not keep the binary media type {BINARY} (it has {types})")

    def create_path(self, api: RestApi, path: str) -> str:
        """The resources of ``/a/b`` under the API's root, one per segment; the last one's id."""
        parent = api.root_id
        with aws_call(f"create the resource {path} of the REST API {api.id}", self.aws.region):
            for segment in path.strip("/").split("/"):
                parent = str(self.client.create_resource(restApiId=api.id, parentId=parent, pathPart=segment)["id"])
        return parent

    def put_post_method(self, api_id: str, resource_id: str, *, auth: str) -> None:
        """POST, guarded by ``auth``: api-key (a key in x-api-key), iam (SigV4) or none."""
        authorization, key_required = _AUTHS[auth]
        with aws_call(f"create the POST method of the REST API {api_id}", self.aws.region):
            self.client.put_method(
                restApiId=api_id,
                resourceId=resource_id,
                httpMethod="POST",
                authorizationType=authorization,
                apiKeyRequired=key_required,
                requestParameters={f"method.request.header.{h}": False for h in _HEADERS},
            )

    def put_sagemaker_integration(self, api_id: str, resource_id: str, *, uri: str, role_arn: str) -> None:
        """POST → InvokeEndpoint with the API's role; the body passes untouched (binary), 29 s at most."""
        with aws_call(f"connect the REST API {api_id} to SageMaker", self.aws.region):
            self.client.put_integration(
                restApiId=api_id,
                resourceId=resource_id,
                httpMethod="POST",
                type="AWS",
                integrationHttpMethod="POST",
                uri=uri,
                credentials=role_arn,
                passthroughBehavior="WHEN_NO_MATCH",
                requestParameters={f"integration.request.header.{h}": f"method.request.header.{h}" for h in _HEADERS},
                timeoutInMillis=TIMEOUT_MS,
            )

    def put_responses(self, api_id: str, resource_id: str) -> None:
        """200 (the default), and each of :data:`PASSED_STATUSES` to itself, with Content-Type passed through.

        ``CONVERT_TO_BINARY`` on each integration response: with ``*/*`` binary the answer is binary already,
        so it is passed as it is; without it an answer that API Gateway took for text would be base64 text. The
        424 (ModelError) one is text instead, read by :data:`MODEL_ERROR_TEMPLATE`.
        """
        header = "method.response.header.Content-Type"
        with aws_call(f"map the status codes of the REST API {api_id}", self.aws.region):
            for status in ("200", *PASSED_STATUSES):
                self.client.put_method_response(
                    restApiId=api_id,
                    resourceId=resource_id,
                    httpMethod="POST",
                    statusCode=status,
                    responseParameters={header: False},
                )
                extra: dict[str, Any] = {"contentHandling": "CONVERT_TO_BINARY"}
                if status != "200":
                    extra["selectionPattern"] = selection_pattern(status)
                if status == "424":
                    extra.update(
                        contentHandling="CONVERT_TO_TEXT", responseTemplates={"application/json": MODEL_ERROR_TEMPLATE}
                    )
                self.client.put_integration_response(
                    restApiId=api_id,
                    resourceId=resource_id,
                    httpMethod="POST",
                    statusCode=status,
                    responseParameters={header: "integration.response.header.Content-Type"},
                    **extra,
                )

    # -- deployment, stage, usage plan, key -----------------------------------------------------------
    def deploy_stage(
        self, api_id: str, stage: str, *, rate: float, burst: int, tags: Mapping[str, str], description: str
    ) -> None:
        """A deployment of the API and its stage, throttled at ``rate`` requests/s (``burst`` at once)."""
        with aws_call(f"deploy the REST API {api_id} to the stage {stage}", self.aws.region):
            deployment = self.client.create_deployment(restApiId=api_id, description=description)
            self.client.create_stage(
                restApiId=api_id,
                stageName=stage,
                deploymentId=deployment["id"],
                description=description,
                tags=dict(tags),
            )
            self.client.update_stage(
                restApiId=api_id,
                stageName=stage,
                patchOperations=[
                    {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{rate:g}"},
                    {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
                ],
            )

    def create_usage_plan(
        self,
        name: str,
        *,
        api_id: str,
        stage: str,
        rate: float,
        burst: int,
        quota: tuple[int, str] | None,
        tags: Mapping[str, str],
    ) -> str:
        """A usage plan on the stage: the throttle per key, and the quota (``(limit, DAY|WEEK|MONTH)``); its id."""
        extra: dict[str, Any] = {"quota": {"limit": quota[0], "period": quota[1]}} if quota else {}
        with aws_call(f"create the usage plan {name}", self.aws.region):
            answer = self.client.create_usage_plan(
                name=name,
                description=f"throttle{' and quota' if quota else ''} of {name}",
                apiStages=[{"apiId": api_id, "stage": stage}],
                throttle={"rateLimit": rate, "burstLimit": burst},
                tags=dict(tags),
                **extra,
            )
        return str(answer["id"])

    def create_api_key(self, name: str, *, tags: Mapping[str, str]) -> tuple[str, str]:
        """An enabled API key: its id and its value."""
        with aws_call(f"create the API key {name}", self.aws.region):
            answer = self.client.create_api_key(name=name, enabled=True, generateDistinctId=True, tags=dict(tags))
        return str(answer["id"]), str(answer["value"])

    def add_key_to_plan(self, plan_id: str, key_id: str) -> None:
        with aws_call(f"add the API key {key_id} to the usage plan {plan_id}", self.aws.region):
            self.client.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")

    def tagged(self, key: str) -> list[tuple[str, str, str]]:
        """``(kind, id, value)`` of every REST API, usage plan and API key carrying the tag ``key``."""
        found: list[tuple[str, str, str]] = []
        with aws_call("list the REST APIs, usage plans and API keys", self.aws.region):
            for kind, operation in (
                ("rest-api", "get_rest_apis"),
                ("usage-plan", "get_usage_plans"),
                ("api-key", "get_api_keys"),
            ):
                for page in self.client.get_paginator(operation).paginate():
                    for item in page.get("items", []):
                        value = (item.get("tags") or {}).get(key)
                        if value is not None:
                            found.append((kind, str(item["id"]), str(value)))
        return found

    # -- read back (export) ---------------------------------------------------------------------------
    def read_api(self, api_id: str) -> dict[str, Any]:
        """GetRestApi, GetResources (every page, with the methods) and GetStages of one API, as answered:
        ``{"api": ..., "resources": [...], "stages": [...]}``."""
        with aws_call(f"read the REST API {api_id}", self.aws.region):
            api = dict(self.client.get_rest_api(restApiId=api_id))
            resources: list[dict[str, Any]] = []
            for page in self.client.get_paginator("get_resources").paginate(restApiId=api_id):
                resources.extend(page.get("items", []))
            stages = list(self.client.get_stages(restApiId=api_id).get("item", []))
        return {"api": api, "resources": resources, "stages": stages}

    def read_method(self, api_id: str, resource_id: str, http_method: str) -> dict[str, Any]:
        """GetMethod: the method with its integration and their responses."""
        with aws_call(f"read the {http_method} method of the REST API {api_id}", self.aws.region):
            return dict(self.client.get_method(restApiId=api_id, resourceId=resource_id, httpMethod=http_method))

    def read_usage_plan(self, plan_id: str) -> dict[str, Any]:
        with aws_call(f"read the usage plan {plan_id}", self.aws.region):
            return dict(self.client.get_usage_plan(usagePlanId=plan_id))

    def read_api_key(self, key_id: str) -> dict[str, Any]:
        """GetApiKey without its value (``includeValue`` false: an export never holds the key)."""
        with aws_call(f"read the API key {key_id}", self.aws.region):
            return dict(self.client.get_api_key(apiKey=key_id, includeValue=False))

    def untag(self, arn: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {arn}", self.aws.region):
            self.client.untag_resource(resourceArn=arn, tagKeys=keys)

    # -- deletes: True when deleted, False when it was already gone -----------------------------------
    def delete_usage_plan(self, plan_id: str) -> bool:
        """Detach its stages (an API with a stage in a plan cannot be deleted), then delete it."""
        with aws_call(f"delete the usage plan {plan_id}", self.aws.region):
            try:
                plan = self.client.get_usage_plan(usagePlanId=plan_id)  # moto fails (500) deleting a missing one
                stages = [f"{s['apiId']}:{s['stage']}" for s in plan.get("apiStages") or []]
                if stages:
                    self.client.update_usage_plan(
                        usagePlanId=plan_id,
                        patchOperations=[{"op": "remove", "path": "/apiStages", "value": s} for s in stages],
                    )
                self.client.delete_usage_plan(usagePlanId=plan_id)
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    return False
                raise
        return True

    def delete_api_key(self, key_id: str) -> bool:
        with aws_call(f"delete the API key {key_id}", self.aws.region):
            try:
                self.client.delete_api_key(apiKey=key_id)
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    return False
                raise
        return True

    def delete_rest_api(self, api_id: str) -> bool:
        """The API with its resources, method, integration, deployments and stages.

        AWS allows one DeleteRestApi per account every 30 s: a throttled delete (after botocore's own
        retries) waits and tries again, up to :data:`DELETE_API_TRIES` times."""
        with aws_call(f"delete the REST API {api_id}", self.aws.region):
            for attempt in range(1, DELETE_API_TRIES + 1):
                try:
                    self.client.get_rest_api(restApiId=api_id)  # moto fails (500) deleting a missing one
                    self.client.delete_rest_api(restApiId=api_id)
                    return True
                except ClientError as exc:
                    if error_code(exc) == "NotFoundException":
                        return False
                    if error_code(exc) != "TooManyRequestsException" or attempt == DELETE_API_TRIES:
                        raise
                    self.sleep(DELETE_API_WAIT_S)
        return True  # not reached: the last attempt returns or raises

    def invoke_url(self, api_id: str, stage: str, path: str) -> str:
        return invoke_url(api_id, self.aws.region, stage, path)
