"""``deploy --update NAME``: a new EndpointConfig, UpdateEndpoint, wait; roll back on failure; then delete
the previous config, model and artifact.

With ``--canary``/``--linear``/``--all-at-once``/``--bake`` (a guarded update, deploy/sagemaker/guard.py) the
UpdateEndpoint carries SageMaker's deployment guardrails, the traffic steps are reported as they happen, and a
rollback SageMaker made because an alarm fired is reported with that alarm.

SageMaker keeps serving the old config while it updates (blue/green) and goes back to it by itself when
the new one fails; this code makes sure the endpoint ends on the old config in every failure case and
removes what the failed attempt created, so the state stays exactly one version.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shipyard.deploy.base import IN_SERVICE, UPDATING, DeployRun
from shipyard.deploy.images import ImageService
from shipyard.deploy.options import PROVISION_S, DeployOptions, SecretRef, update_budget_s
from shipyard.deploy.sagemaker import alarms, guards
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.create import (
    Version,
    attach_autoscaling,
    create_version,
    preflight,
    push_image,
    resolve_image,
    role_policy,
    wait_for,
)
from shipyard.deploy.sagemaker.guard import Progress, deployment_config, fired, rollback_alarms
from shipyard.deploy.sagemaker.names import POLICY_NAME, VARIANT
from shipyard.deploy.state import Deployment, Details
from shipyard.errors import DeployError, DeployFailed, ShipyardError
from shipyard.units import format_duration

__all__ = ["inherit_environment", "update"]

_MANAGED_ENV = {"SAGEMAKER_REGION", "SHIPYARD_SECRETS"}


@dataclass(frozen=True)
class _Versions:
    """The version being replaced and the one replacing it."""

    old_config: str
    old_model: str
    old_version: str
    new_config: str
    new_model: str


def inherit_environment(ctx: Context, options: DeployOptions, model: str) -> DeployOptions:
    """Keep the live model's env and secrets settings unless new ones are given (AWS is the truth)."""
    described = ctx.sagemaker.describe_model(model) or {}
    live = dict(described.get("PrimaryContainer", {}).get("Environment", {}))
    env = {k: v for k, v in live.items() if k not in _MANAGED_ENV}
    env.update(options.env)
    secrets = options.secrets
    if not secrets and live.get("SHIPYARD_SECRETS"):
        secrets = tuple(SecretRef.parse(item) for item in live["SHIPYARD_SECRETS"].split(",") if item)
    return options.replace(env=env, secrets=secrets)


def update(
    ctx: Context, run: DeployRun, images: ImageService, *, version: str, poll_s: float, registry: str | None
) -> Deployment:
    """A new version beside the live one, UpdateEndpoint, wait; roll back on failure, else drop the old one."""
    record = run.record
    details = record.details
    if not details.endpoint_config:
        raise DeployError(f"the record of {record.name} names no endpoint config; run `shipyard status --reconcile`")
    run.options = inherit_environment(ctx, run.options, details.model or "")
    checks = preflight(ctx, run.options, update=True)
    this = Version(version, resolve_image(images, run), checks, registry)
    pushed = push_image(ctx, run, images, this, create=False)
    if any(r.owned for r in record.of("role")):  # secrets or capture may change
        ctx.iam.put_policy(ctx.names.role, POLICY_NAME, role_policy(ctx, run.options, checks))
    before = dataclasses.replace(record, details=dataclasses.replace(details))
    create_version(ctx, run, this, image_uri=pushed.uri)
    versions = _Versions(
        old_config=before.details.endpoint_config or "",
        old_model=before.details.model or "",
        old_version=before.details.version or "",
        new_config=record.details.endpoint_config or "",
        new_model=record.details.model or "",
    )
    rollback_on = _guard_alarms(ctx, run) if _guarded(run.options) else []
    since_ms = _switch(ctx, run, versions, image_uri=pushed.uri, alarms=rollback_on)
    try:
        _wait_on_new(ctx, run, versions, poll_s, since_ms, rollback_on)
    except DeployFailed as failure:
        _roll_back(ctx, run, before, versions, poll_s)
        raise DeployFailed(
            f"{failure}; the endpoint is back on {versions.old_config}",
            reason=failure.reason,
            log_tail=failure.log_tail,
            alarm=failure.alarm,
        ) from None
    _drop_previous(ctx, run, versions, version)
    attach_autoscaling(ctx, run)
    alarms.ensure(ctx, run)
    guards.ensure(ctx, run)
    record.touch(IN_SERVICE)
    run.save()
    return record


def _guarded(options: DeployOptions) -> bool:
    return options.rollout is not None or options.bake_s is not None


def _guard_alarms(ctx: Context, run: DeployRun) -> list[str]:
    """The alarms a guarded update rolls back on; without any (``--no-alarms``), a warning that only a failed
    update will."""
    alarms = rollback_alarms(ctx, run.record)
    if not alarms:
        run.step(
            f"warning: {run.record.name} has no alarms (deployed with --no-alarms): SageMaker rolls this update back "
            "only if it fails, not on errors or latency while traffic moves"
        )
    return alarms


def _switch(ctx: Context, run: DeployRun, versions: _Versions, *, image_uri: str, alarms: list[str]) -> int:
    """UpdateEndpoint to the new config (a variant under autoscaling cannot be replaced: detached first), with
    the guardrails asked for; when it was asked, in ms (the container log lines to show on failure start there)."""
    names, record = ctx.names, run.record
    if record.of("autoscaling"):  # re-attached after
        ctx.scaling.detach(names.endpoint, VARIANT)
        record.drop("autoscaling", f"endpoint/{names.endpoint}/variant/{VARIANT}")
        run.save()
    since_ms = int(time.time() * 1000)
    options = run.options
    ctx.sagemaker.update_endpoint(
        names.endpoint, config=versions.new_config, deployment_config=deployment_config(options, alarms)
    )
    record.image = image_uri
    record.touch(UPDATING)
    run.save()
    how = ""
    if _guarded(options):
        rollout = options.rollout.label() if options.rollout else "all at once"
        watched = f"rolls back on {', '.join(alarms)}" if alarms else "no alarms to roll back on"
        how = f" ({rollout}, bake {format_duration(options.bake_s or 0)}, {watched})"
    run.step(f"updating {names.endpoint} to {versions.new_config}{how}")
    return since_ms


def _wait_on_new(
    ctx: Context, run: DeployRun, versions: _Versions, poll_s: float, since_ms: int, alarms: list[str]
) -> None:
    """Until the endpoint settles; a guarded update's steps reported, as long as SageMaker may take (and its
    rollback after); :class:`DeployFailed` when it did not end on the new config (naming the alarm that fired)."""
    options = run.options
    guarded = _guarded(options)
    described = wait_for(
        ctx,
        run,
        poll_s,
        since_ms=since_ms,
        timeout_s=update_budget_s(options) + PROVISION_S if guarded else None,
        watch=Progress(run, options, versions.new_config) if guarded else None,
    )
    if described.get("EndpointConfigName") != versions.new_config:
        alarm = fired(ctx, alarms, datetime.fromtimestamp(since_ms / 1000, UTC))
        if alarm is not None:
            raise DeployFailed(
                f"rolled back: alarm {alarm.name} fired ({alarm.reason})", reason=alarm.reason, alarm=alarm.name
            )
        reason = str(described.get("FailureReason") or "SageMaker went back to the previous config")
        raise DeployFailed(f"the update of {ctx.names.endpoint} failed and was rolled back: {reason}", reason=reason)


def _drop_previous(ctx: Context, run: DeployRun, versions: _Versions, version: str) -> None:
    """Success: the previous version's config, model and artifact go."""
    record = run.record
    for kind, ident, current, delete in (
        ("endpoint-config", versions.old_config, record.details.endpoint_config, ctx.sagemaker.delete_endpoint_config),
        ("model", versions.old_model, record.details.model, ctx.sagemaker.delete_model),
    ):
        if ident and ident != current:
            delete(ident)
            record.drop(kind, ident)
            run.save()
    if versions.old_version and versions.old_version != version and record.details.bucket:
        ctx.s3.delete_prefix(record.details.bucket, f"{ctx.names.prefix}{versions.old_version}/")
    run.step(f"deleted the previous version {versions.old_config}")


def _roll_back(ctx: Context, run: DeployRun, before: Deployment, versions: _Versions, poll_s: float) -> None:
    """Back to the old config (when SageMaker did not go back by itself); the new version's parts go."""
    names, record = ctx.names, run.record
    described = ctx.sagemaker.describe_endpoint(names.endpoint) or {}
    if described.get("EndpointConfigName") != versions.old_config or described.get("EndpointStatus") != IN_SERVICE:
        run.step(f"rolling back {names.endpoint} to {versions.old_config}")
        ctx.sagemaker.update_endpoint(names.endpoint, config=versions.old_config)
        try:
            wait_for(ctx, run, poll_s)
        except ShipyardError as exc:
            raise DeployError(
                f"the update failed and so did the rollback to {versions.old_config}: {exc}. The endpoint needs "
                f"attention: `shipyard status {names.endpoint}`; `shipyard cleanup {names.endpoint}` removes it"
            ) from exc
    ctx.sagemaker.delete_endpoint_config(versions.new_config)
    ctx.sagemaker.delete_model(versions.new_model)
    record.drop("endpoint-config", versions.new_config)
    record.drop("model", versions.new_model)
    _restore(record, before)
    record.touch(IN_SERVICE)
    run.save()
    if before.options is not None and before.options.autoscale is not None:
        run.options = before.options
        attach_autoscaling(ctx, run)


def _restore(record: Deployment, before: Deployment) -> None:
    record.details = Details(**dataclasses.asdict(before.details))
    record.image, record.options, record.env_keys = before.image, before.options, before.env_keys
    record.instance_type, record.instance_count = before.instance_type, before.instance_count
