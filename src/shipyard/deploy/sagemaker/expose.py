"""``shipyard expose`` on ``sagemaker``: an API Gateway REST API in front of the endpoint.

In order, each recorded in the deployment's record (and saved) the moment it exists:

1. ``api-role``: the role API Gateway assumes (trusts apigateway.amazonaws.com for this account only; may
   call ``sagemaker:InvokeEndpoint`` on this endpoint only);
2. ``rest-api``: the REST API (REGIONAL, every media type binary), the resource of ``--path``, its POST
   method (guarded by ``--auth``), the SageMaker integration, the status mapping, a deployment and the
   stage ``v1``, throttled at ``--rate``/``--burst``;
3. with ``--auth api-key``: ``api-key`` (enabled), ``usage-plan`` (the same throttle per key, and
   ``--quota``; on the stage) with the key in it, and ``api-key-secret``: the key's value in Secrets
   Manager (``shipyard/NAME/api-key``), where ``shipyard expose --show-key`` and ``--via api`` read it.

A failure half-way removes what it made (through cleanup's deleters, the one home of every delete) and
raises; ``unexpose`` removes the same kinds the same way, and ``cleanup`` removes them first of all.
"""

from __future__ import annotations

from typing import Any

from shipyard.cloud.apigateway import sagemaker_invoke_uri
from shipyard.cloud.iam import apigateway_trust_policy
from shipyard.deploy.base import Reporter, Save, SilentReporter
from shipyard.deploy.expose import ExposeOptions, Exposure, key_secret_name
from shipyard.deploy.sagemaker.cleanup import API_KINDS, remove
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import ROLE_PATH
from shipyard.deploy.state import Deployment, now_utc
from shipyard.errors import ShipyardError

__all__ = ["API_POLICY_NAME", "STAGE", "endpoint_arn", "expose", "invoke_policy", "unexpose"]

STAGE = "v1"
API_POLICY_NAME = "shipyard-invoke-endpoint"


def endpoint_arn(ctx: Context, endpoint: str) -> str:
    """SageMaker's ARN of ``endpoint``: SageMaker writes resource names lower-cased in its ARNs (an endpoint
    ``Digits`` is ``...:endpoint/digits``), and IAM compares ARNs as written."""
    return ctx.aws.arn("sagemaker", f"endpoint/{endpoint.lower()}")


def invoke_policy(arn: str) -> dict[str, Any]:
    """The API's role may do one thing: InvokeEndpoint on one endpoint."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "InvokeEndpoint", "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": arn}
        ],
    }


def expose(
    ctx: Context, record: Deployment, options: ExposeOptions, save: Save, reporter: Reporter
) -> tuple[Exposure, str | None]:
    """Make the public API of ``record`` (see the module's docstring); the exposure and the key (api-key)."""
    try:
        exposure, key = _make(ctx, record, options, save, reporter)
    except ShipyardError as failure:
        left = _roll_back(ctx, record, save, reporter)
        # the same error (its kind sets the exit code), saying what became of the parts already made
        failure.args = (f"expose {record.name} failed: {failure}; {left}", *failure.args[1:])
        raise
    record.exposure = exposure
    save(record)
    return exposure, key


def _make(
    ctx: Context, record: Deployment, options: ExposeOptions, save: Save, reporter: Reporter
) -> tuple[Exposure, str | None]:
    role_arn = _role(ctx, record, save, reporter)
    api_id = _rest_api(ctx, record, options, role_arn, save, reporter)
    url = ctx.apigateway.invoke_url(api_id, STAGE, options.path)
    exposure = Exposure(
        url=url,
        auth=options.auth,
        path=options.path,
        rate=options.rate,
        burst=options.burst,
        quota=str(options.quota) if options.quota else None,
        api_id=api_id,
        stage=STAGE,
        role_arn=role_arn,
        created_at=now_utc().isoformat(),
    )
    key = _key(ctx, record, options, exposure, save, reporter) if options.auth == "api-key" else None
    return exposure, key


def _role(ctx: Context, record: Deployment, save: Save, reporter: Reporter) -> str:
    """1. the role API Gateway calls InvokeEndpoint with"""
    name = ctx.names.api_role
    arn = ctx.iam.create_role(
        name,
        trust=apigateway_trust_policy(ctx.aws.account),
        path=ROLE_PATH,
        tags=ctx.tag_list,
        description=f"API Gateway's role for the public API of the Shipyard deployment {record.name}",
    )
    record.add("api-role", name)
    save(record)
    ctx.iam.put_policy(name, API_POLICY_NAME, invoke_policy(endpoint_arn(ctx, ctx.names.endpoint)))
    reporter.step(f"IAM role {name} (sagemaker:InvokeEndpoint on {ctx.names.endpoint} only)")
    return arn


def _rest_api(
    ctx: Context, record: Deployment, options: ExposeOptions, role_arn: str, save: Save, reporter: Reporter
) -> str:
    """2. the REST API, its POST method and integration, and its throttled stage"""
    gateway = ctx.apigateway
    api = gateway.create_api(
        ctx.names.api, description=f"the public API of the Shipyard deployment {record.name}", tags=ctx.tags
    )
    api_id = api.id
    record.add("rest-api", api_id)
    save(record)
    resource = gateway.create_path(api, options.path)
    gateway.put_post_method(api_id, resource, auth=options.auth)
    uri = sagemaker_invoke_uri(ctx.aws.region, ctx.names.endpoint, ctx.aws.identity().partition)
    gateway.put_sagemaker_integration(api_id, resource, uri=uri, role_arn=role_arn)
    gateway.put_responses(api_id, resource)
    reporter.step(f"REST API {ctx.names.api} ({api_id}): POST {options.path} → InvokeEndpoint, auth {options.auth}")
    gateway.deploy_stage(
        api_id,
        STAGE,
        rate=options.rate,
        burst=options.burst,
        tags=ctx.tags,
        description=f"shipyard expose {record.name}",
    )
    reporter.step(f"stage {STAGE}: {options.rate:g} requests/s, bursts of {options.burst}")
    return api_id


def _key(
    ctx: Context, record: Deployment, options: ExposeOptions, exposure: Exposure, save: Save, reporter: Reporter
) -> str:
    """3. the API key, its usage plan, and the key's value in Secrets Manager"""
    gateway, name = ctx.apigateway, ctx.names.api
    key_id, key = gateway.create_api_key(name, tags=ctx.tags)
    record.add("api-key", key_id)
    save(record)
    quota = (options.quota.limit, options.quota.period) if options.quota else None
    plan_id = gateway.create_usage_plan(
        name,
        api_id=exposure.api_id or "",
        stage=STAGE,
        rate=options.rate,
        burst=options.burst,
        quota=quota,
        tags=ctx.tags,
    )
    record.add("usage-plan", plan_id)
    save(record)
    gateway.add_key_to_plan(plan_id, key_id)
    reporter.step(f"API key {key_id} in the usage plan {plan_id}" + (f" (quota {options.quota})" if quota else ""))
    secret = key_secret_name(record.name)
    ctx.secrets.create(
        secret, key, description=f"the API key of the public API of {record.name} (shipyard expose)", tags=ctx.tags
    )
    record.add("api-key-secret", secret)
    save(record)
    reporter.step(f"the key is kept in Secrets Manager as {secret}")
    exposure.key_id, exposure.usage_plan_id, exposure.key_ref = key_id, plan_id, secret
    return key


def _roll_back(ctx: Context, record: Deployment, save: Save, reporter: Reporter) -> str:
    """Remove what a failed expose made; what became of it, in words."""
    if not any(record.of(kind) for kind in API_KINDS):
        return "nothing had been made"
    reporter.step("expose failed: removing what it made")
    try:
        remove(ctx, record, API_KINDS, save, SilentReporter())
    except ShipyardError as exc:
        return f"removing what it made stopped ({exc}): `shipyard unexpose {record.name}` finishes it"
    return "what it had made is removed"


def unexpose(ctx: Context, record: Deployment, save: Save, reporter: Reporter) -> list[str]:
    """Remove the public API of ``record`` (every resource of :data:`API_KINDS` it owns); what was deleted."""
    report = remove(ctx, record, API_KINDS, save, reporter)
    record.exposure = None
    save(record)
    return report.deleted
