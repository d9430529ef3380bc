"""The API Gateway front of an export (``expose``) as the provider's resources: the REST API, its resource, the
method with its method responses, integration and integration responses, the deployment, the stage with its
method settings, the key, the usage plan and the plan's key; each with the id its ``import`` takes."""

from __future__ import annotations

from typing import Any

from shipyard.deploy.export.hcl import Block, Expr
from shipyard.deploy.export.model import Resource
from shipyard.deploy.export.terraform_values import Made, Translator, ident, snake

__all__ = ["api_key", "api_resource", "deployment", "method", "rest_api", "stage", "usage_plan", "usage_plan_key"]


def rest_api(tf: Translator, r: Resource) -> list[Made]:
    props = dict(r.properties)
    policy = props.pop("Policy", None)
    block = tf.body(
        Block("resource", ("aws_api_gateway_rest_api", tf.name(r.logical_id))),
        props,
        {"ApiKeySourceType": "api_key_source"},
    )
    if policy is not None:
        block.set("policy", tf.json(policy))
    return [Made(block, ident(r, "RestApiId"))]


def _api_id(tf: Translator, r: Resource) -> str:
    return r.import_identifier.get("RestApiId") or tf.live(r.properties["RestApiId"])


def api_resource(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_resource", tf.name(r.logical_id))), r.properties)
    return [Made(block, f"{_api_id(tf, r)}/{ident(r, 'ResourceId')}")]


def method(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    props = dict(r.properties)
    integration = dict(props.pop("Integration", {}))
    responses = props.pop("MethodResponses", [])
    where: dict[str, Any] = {k: props[k] for k in ("RestApiId", "ResourceId") if k in props}
    api = _api_id(tf, r)
    resource_id = r.import_identifier.get("ResourceId") or tf.live(props["ResourceId"])
    method = r.import_identifier.get("HttpMethod") or tf.live(props["HttpMethod"])
    key = f"{api}/{resource_id}/{method}"
    block = tf.body(Block("resource", ("aws_api_gateway_method", name)), props, {"AuthorizationType": "authorization"})
    made = [Made(block, key)]
    head: dict[str, Any] = {**where, "HttpMethod": Expr(f"aws_api_gateway_method.{name}.http_method")}
    for response in responses:
        status = tf.live(response["StatusCode"])
        inner = tf.body(Block("resource", ("aws_api_gateway_method_response", f"{name}_{snake(status)}")), head)
        tf.body(inner, response)
        made.append(Made(inner, f"{key}/{status}"))
    if integration:
        answers = integration.pop("IntegrationResponses", [])
        inner = tf.body(Block("resource", ("aws_api_gateway_integration", name)), head)
        tf.body(inner, integration, {"TimeoutInMillis": "timeout_milliseconds", "Uri": "uri"})
        made.append(Made(inner, key))
        for answer in answers:
            status = tf.live(answer["StatusCode"])
            reply = tf.body(
                Block("resource", ("aws_api_gateway_integration_response", f"{name}_{snake(status)}")), head
            )
            tf.body(reply, answer)
            needs = [f"aws_api_gateway_integration.{name}"]
            if any(tf.live(m["StatusCode"]) == status for m in responses):
                needs.append(f"aws_api_gateway_method_response.{name}_{snake(status)}")
            reply.set("depends_on", [Expr(n) for n in needs])
            made.append(Made(reply, f"{key}/{status}"))
    return made


def deployment(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_deployment", tf.name(r.logical_id))), r.properties)
    return [Made(block, f"{_api_id(tf, r)}/{ident(r, 'DeploymentId')}")]


def _method_path(setting: dict[str, Any], tf: Translator) -> str:
    """MethodSettings' ``/*`` + ``*`` → ``*/*``; ``/~1a/b`` + ``POST`` → ``a/b/POST`` (the provider's method_path)."""
    path = tf.live(setting.get("ResourcePath", "/*")).lstrip("/").replace("~1", "/")
    return f"{path}/{tf.live(setting.get('HttpMethod', '*'))}"


def stage(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    props = dict(r.properties)
    settings = props.pop("MethodSettings", [])
    block = tf.body(
        Block("resource", ("aws_api_gateway_stage", name)), props, {"TracingEnabled": "xray_tracing_enabled"}
    )
    api, stage = _api_id(tf, r), r.import_identifier.get("StageName") or tf.live(props["StageName"])
    made = [Made(block, f"{api}/{stage}")]
    for i, setting in enumerate(settings):
        path = _method_path(setting, tf)
        inner = Block("resource", ("aws_api_gateway_method_settings", name if len(settings) == 1 else f"{name}_{i}"))
        inner.set("rest_api_id", tf.hcl(props["RestApiId"]))
        inner.set("stage_name", Expr(f"aws_api_gateway_stage.{name}.stage_name"))
        inner.set("method_path", path)
        values = {k: v for k, v in setting.items() if k not in ("ResourcePath", "HttpMethod")}
        inner.add(tf.body(Block("settings"), values, {"CacheTtlInSeconds": "cache_ttl_in_seconds"}))
        made.append(Made(inner, f"{api}/{stage}/{path}"))
    return made


def api_key(tf: Translator, r: Resource) -> list[Made]:
    props = {k: v for k, v in r.properties.items() if k not in ("StageKeys", "GenerateDistinctId")}
    block = tf.body(Block("resource", ("aws_api_gateway_api_key", tf.name(r.logical_id))), props)
    return [Made(block, ident(r, "APIKeyId"))]


def usage_plan(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_api_gateway_usage_plan", tf.name(r.logical_id))),
        r.properties,
        {"UsagePlanName": "name", "Quota": "quota_settings", "Throttle": "throttle_settings"},
    )
    return [Made(block, ident(r, "Id"))]


def usage_plan_key(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_usage_plan_key", tf.name(r.logical_id))), r.properties)
    plan, key = tf.live(r.properties["UsagePlanId"]), tf.live(r.properties["KeyId"])
    return [Made(block, f"{plan}/{key}")]
