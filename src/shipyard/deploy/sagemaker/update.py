"""``deploy --update NAME``: a new EndpointConfig, UpdateEndpoint, wait; roll back on failure; then delete
the previous config, model and artifact.

SageMaker keeps serving the old config while it updates (blue/green) and goes back to it by itself when
the new one fails; this code makes sure the endpoint ends on the old config in every failure case and
removes what the failed attempt created, so the state stays exactly one version.
"""

from __future__ import annotations

import dataclasses
import time

from shipyard.cloud.session import tag_list
from shipyard.deploy.base import IN_SERVICE, UPDATING, Reporter, Save
from shipyard.deploy.images import ImageService
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.create import (
    attach_autoscaling,
    create_version,
    preflight,
    resolve_image,
    role_policy,
    tags_for,
)
from shipyard.deploy.sagemaker.names import POLICY_NAME, VARIANT
from shipyard.deploy.sagemaker.push import publish
from shipyard.deploy.sagemaker.waiter import wait_in_service
from shipyard.deploy.spec import DeploySpec, SecretRef
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError, DeployFailed, ShipyardError

__all__ = ["inherit_environment", "update"]

_MANAGED_ENV = {"SAGEMAKER_REGION", "SHIPYARD_SECRETS"}


def inherit_environment(ctx: Context, spec: DeploySpec, model: str) -> DeploySpec:
    """Keep the live model's --env and --secret settings unless new ones are given (AWS is the truth)."""
    described = ctx.sagemaker.describe_model(model) or {}
    live = dict(described.get("PrimaryContainer", {}).get("Environment", {}))
    env = {k: v for k, v in live.items() if k not in _MANAGED_ENV}
    env.update(spec.env)
    secrets = spec.secrets
    if not secrets and live.get("SHIPYARD_SECRETS"):
        secrets = tuple(SecretRef.parse(item) for item in live["SHIPYARD_SECRETS"].split(",") if item)
    return dataclasses.replace(spec, env=env, secrets=secrets)


def update(
    ctx: Context,
    spec: DeploySpec,
    record: Deployment,
    save: Save,
    reporter: Reporter,
    images: ImageService,
    *,
    version: str,
    poll_s: float,
) -> Deployment:
    names = ctx.names
    old_config = str(record.details.get("endpoint_config", ""))
    old_model = str(record.details.get("model", ""))
    old_version = str(record.details.get("version", ""))
    if not old_config:
        raise DeployError(f"the record of {record.name} names no endpoint config; run `shipyard status --reconcile`")
    spec = inherit_environment(ctx, spec, old_model)
    checks = preflight(ctx, spec, update=True)
    resolved = resolve_image(images, spec, reporter)

    repository = ctx.ecr.create_repository(names.repository, tags=tag_list(record.name))
    pushed = publish(
        images,
        ctx.ecr,
        image=resolved.image,
        repository=repository,
        tag=version,
        registry_override=spec.registry_override,
    )
    reporter.step(f"image {pushed.uri}")
    if any(r.owned for r in record.of("role")):
        ctx.iam.put_policy(names.role, POLICY_NAME, role_policy(ctx, spec, checks))  # secrets or capture may change
    before = dataclasses.replace(record, details=dict(record.details))
    create_version(ctx, spec, record, save, reporter, resolved, version=version, image_uri=pushed.uri, checks=checks)
    new_config, new_model = str(record.details["endpoint_config"]), str(record.details["model"])

    if record.of("autoscaling"):  # a variant under autoscaling cannot be replaced; re-attached after
        ctx.scaling.detach(names.endpoint, VARIANT)
        record.drop("autoscaling", f"endpoint/{names.endpoint}/variant/{VARIANT}")
        save(record)
    since_ms = int(time.time() * 1000)
    ctx.sagemaker.update_endpoint(names.endpoint, config=new_config)
    record.image = pushed.uri
    record.touch(UPDATING)
    save(record)
    reporter.step(f"updating {names.endpoint} to {new_config}")
    try:
        described = wait_in_service(
            ctx.sagemaker,
            ctx.logs,
            endpoint=names.endpoint,
            log_group=names.log_group,
            reporter=reporter,
            timeout_s=spec.startup_timeout_s + 1800,
            poll_s=poll_s,
            since_ms=since_ms,
        )
        if described.get("EndpointConfigName") != new_config:
            reason = str(described.get("FailureReason") or "SageMaker went back to the previous config")
            raise DeployFailed(f"the update of {names.endpoint} failed and was rolled back: {reason}", reason=reason)
    except DeployFailed as failure:
        _roll_back(ctx, record, save, reporter, before, old_config, new_config, new_model, poll_s, spec)
        raise DeployFailed(
            f"{failure}; the endpoint is back on {old_config}",
            reason=failure.reason,
            log_tail=failure.log_tail,
        ) from None

    # Success: the previous version's config, model and artifact go.
    for kind, ident, delete in (
        ("endpoint-config", old_config, ctx.sagemaker.delete_endpoint_config),
        ("model", old_model, ctx.sagemaker.delete_model),
    ):
        if ident and ident != record.details.get(kind.replace("-", "_")):
            delete(ident)
            record.drop(kind, ident)
            save(record)
    if old_version and old_version != version and record.details.get("bucket"):
        ctx.s3.delete_prefix(str(record.details["bucket"]), f"{names.prefix}{old_version}/")
    reporter.step(f"deleted the previous version {old_config}")
    attach_autoscaling(ctx, spec, record, save, reporter)
    record.touch(IN_SERVICE)
    save(record)
    return record


def _roll_back(
    ctx: Context,
    record: Deployment,
    save: Save,
    reporter: Reporter,
    before: Deployment,
    old_config: str,
    new_config: str,
    new_model: str,
    poll_s: float,
    spec: DeploySpec,
) -> None:
    names = ctx.names
    described = ctx.sagemaker.describe_endpoint(names.endpoint) or {}
    if described.get("EndpointConfigName") != old_config or described.get("EndpointStatus") != IN_SERVICE:
        reporter.step(f"rolling back {names.endpoint} to {old_config}")
        ctx.sagemaker.update_endpoint(names.endpoint, config=old_config)
        try:
            wait_in_service(
                ctx.sagemaker,
                ctx.logs,
                endpoint=names.endpoint,
                log_group=names.log_group,
                reporter=reporter,
                timeout_s=spec.startup_timeout_s + 1800,
                poll_s=poll_s,
            )
        except ShipyardError as exc:
            raise DeployError(
                f"the update failed and so did the rollback to {old_config}: {exc}. The endpoint needs attention: "
                f"`shipyard status {names.endpoint}`; `shipyard cleanup {names.endpoint}` removes it"
            ) from exc
    ctx.sagemaker.delete_endpoint_config(new_config)
    ctx.sagemaker.delete_model(new_model)
    record.drop("endpoint-config", new_config)
    record.drop("model", new_model)
    record.details = before.details
    record.image = before.image
    record.instance_type, record.instance_count = before.instance_type, before.instance_count
    record.serverless, record.autoscale = before.serverless, before.autoscale
    record.touch(IN_SERVICE)
    save(record)
    if before.autoscale:
        ctx.scaling.attach(
            names.endpoint,
            VARIANT,
            minimum=int(before.autoscale["min"]),
            maximum=int(before.autoscale["max"]),
            target_invocations_per_minute=float(before.autoscale["target_per_minute"]),
            policy_name=names.scaling_policy,
            tags=tags_for(record),
        )
        record.add("autoscaling", f"endpoint/{names.endpoint}/variant/{VARIANT}")
        save(record)
