"""Delete a deployment's AWS resources in dependency order; idempotent, and resumable from the state.

Order: the public API (usage plan → API key → REST API → the key's secret → the API's role) → the spend guards
(TTL schedule → idle rule → state machine → idle alarm → guard role) → alarms →
dashboard → SNS topic → autoscaling → endpoint → endpoint configs → models → ECR repository (and its images)
→ S3 objects → role → log group. Each resource leaves the record the moment it is gone (or found already gone), so a
cleanup stopped half-way by an error is finished by running it again. ``keep_artifacts`` keeps the image
repository and the S3 objects (and their records).
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.deploy.base import DELETED, DELETING, CleanupReport, Reporter, Save
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import VARIANT
from shipyard.deploy.state import Deployment, Resource

__all__ = ["API_KINDS", "ARTIFACT_KINDS", "GUARD_KINDS", "ORDER", "WATCH_KINDS", "cleanup", "remove"]

# the public API first (a usage plan holds its API's stage; the API's role is used by the API), then what
# watches the endpoint (alarms, their dashboard and topic), then the endpoint and what it is made of
API_KINDS = ("usage-plan", "api-key", "rest-api", "api-key-secret", "api-role")
WATCH_KINDS = ("alarm", "dashboard", "sns-topic")
# the spend guards (deploy/sagemaker/guards.py): the TTL schedule, then the idle rule (it starts the state
# machine), the state machine, the idle alarm (it notifies the topic), and the role the schedule and the state
# machine delete the endpoint with
GUARD_KINDS = ("ttl-schedule", "idle-rule", "state-machine", "idle-alarm", "guard-role")
ORDER = (
    *API_KINDS,
    *GUARD_KINDS,
    *WATCH_KINDS,
    "scaling-alarm",
    "autoscaling",
    "endpoint",
    "endpoint-config",
    "model",
    "ecr-repository",
    "s3-prefix",
    "role",
    "log-group",
)
ARTIFACT_KINDS = {"ecr-repository", "s3-prefix"}


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def _deleter(ctx: Context, resource: Resource) -> Callable[[], bool]:
    kind, ident = resource.kind, resource.id
    if kind in API_KINDS:
        return _api_deleter(ctx, kind, ident)
    if kind in GUARD_KINDS:
        return _guard_deleter(ctx, kind, ident)
    if kind in {"alarm", "scaling-alarm"}:  # scaling-alarm: an async endpoint's scale-from-zero alarm
        return lambda: ctx.cloudwatch.delete_alarm(ident)
    if kind == "dashboard":
        return lambda: ctx.cloudwatch.delete_dashboard(ident)
    if kind == "sns-topic":
        return lambda: ctx.sns.delete_topic(ident)
    if kind == "autoscaling":
        endpoint = ident.split("/")[1]
        return lambda: ctx.scaling.detach(endpoint, VARIANT)
    if kind == "endpoint":
        return lambda: ctx.sagemaker.delete_endpoint(ident)
    if kind == "endpoint-config":
        return lambda: ctx.sagemaker.delete_endpoint_config(ident)
    if kind == "model":
        return lambda: ctx.sagemaker.delete_model(ident)
    if kind == "ecr-repository":
        return lambda: ctx.ecr.delete_repository(ident)
    if kind == "s3-prefix":
        bucket, prefix = _split_s3(ident)
        return lambda: ctx.s3.delete_prefix(bucket, prefix) > 0
    if kind == "role":
        return lambda: ctx.iam.delete_role(ident)
    if kind == "log-group":
        return lambda: ctx.logs.delete_group(ident)
    raise ValueError(f"unknown resource kind {kind!r}")


def _api_deleter(ctx: Context, kind: str, ident: str) -> Callable[[], bool]:
    """The public API's parts (``deploy/sagemaker/expose.py``): each delete answers False when already gone."""
    deleters: dict[str, Callable[[], bool]] = {
        "usage-plan": lambda: ctx.apigateway.delete_usage_plan(ident),
        "api-key": lambda: ctx.apigateway.delete_api_key(ident),
        "rest-api": lambda: ctx.apigateway.delete_rest_api(ident),
        "api-key-secret": lambda: ctx.secrets.delete(ident),
        "api-role": lambda: ctx.iam.delete_role(ident),
    }
    return deleters[kind]


def _guard_deleter(ctx: Context, kind: str, ident: str) -> Callable[[], bool]:
    """The spend guards (``deploy/sagemaker/guards.py``): each delete answers False when already gone (a TTL
    schedule deleted by hand; a rule's targets go with it)."""
    deleters: dict[str, Callable[[], bool]] = {
        "ttl-schedule": lambda: ctx.scheduler.delete(ident),
        "idle-rule": lambda: ctx.events.delete_rule(ident),
        "state-machine": lambda: ctx.stepfunctions.delete(ident),
        "idle-alarm": lambda: ctx.cloudwatch.delete_alarm(ident),
        "guard-role": lambda: ctx.iam.delete_role(ident),
    }
    return deleters[kind]


def cleanup(
    ctx: Context, record: Deployment, save: Save, reporter: Reporter, *, keep_artifacts: bool = False
) -> CleanupReport:
    record.touch(DELETING)
    save(record)
    report = remove(ctx, record, ORDER, save, reporter, keep_artifacts=keep_artifacts)
    record.touch(DELETED)
    save(record)
    return report


def remove(
    ctx: Context,
    record: Deployment,
    kinds: tuple[str, ...],
    save: Save,
    reporter: Reporter,
    *,
    keep_artifacts: bool = False,
) -> CleanupReport:
    """Delete the resources of ``kinds`` (in :data:`ORDER`) that ``record`` owns, each dropped from it (and
    saved) the moment it is gone: ``cleanup`` for all of them, ``unexpose`` and a failed ``expose`` for
    :data:`API_KINDS`."""
    report = CleanupReport(record.name)
    for kind in [k for k in ORDER if k in kinds]:
        for resource in list(record.of(kind)):
            label = f"{kind} {resource.id}"
            if not resource.owned:
                record.drop(kind, resource.id)
                report.kept.append(f"{label} (not created by Shipyard)")
                continue
            if keep_artifacts and kind in ARTIFACT_KINDS:
                report.kept.append(label)
                continue
            deleted = _deleter(ctx, resource)()  # raises on a real error: the record keeps what is left
            record.drop(kind, resource.id)
            save(record)
            (report.deleted if deleted else report.already_gone).append(label)
            reporter.step(f"deleted {label}" if deleted else f"{label} was already gone")
    return report
