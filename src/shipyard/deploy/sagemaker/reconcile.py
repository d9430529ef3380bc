"""Rebuild the records of a region's SageMaker deployments from AWS (``status --reconcile``).

The tag ``shipyard:deployment=NAME`` is the source of truth: every SageMaker endpoint, endpoint config and
model, ECR repository, IAM role (path /shipyard/), log group, REST API, usage plan and API key carrying it is
collected under its deployment; the S3 prefix, the API key's secret, the alarms, the dashboard, the alarms'
topic and the spend guards (TTL schedule, idle alarm, rule, state machine) are found from the deployment's name
(``Names``: exact names, so ``a`` never collects what belongs to ``a-b``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.cloud.s3 import default_bucket
from shipyard.cloud.scheduler import one_time_at
from shipyard.cloud.session import EXPIRES_TAG, TAG_KEY, Aws
from shipyard.deploy.base import DELETED
from shipyard.deploy.expose import key_secret_name
from shipyard.deploy.options import DeployOptions, SecretRef, Serverless
from shipyard.deploy.sagemaker.alarms import METRICS
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.guards import machine_arn
from shipyard.deploy.sagemaker.names import ROLE_PATH, Names
from shipyard.deploy.state import Deployment, now_utc
from shipyard.errors import SpecError

__all__ = ["reconcile"]


def reconcile(aws: Aws, *, bucket: str | None = None) -> dict[str, Deployment]:
    ctx = Context(aws, Names("-"))
    found: dict[str, Deployment] = {}
    now = now_utc().isoformat()

    def record(name: str, created: datetime | None = None) -> Deployment:
        if name not in found:
            stamp = created.isoformat() if created else now
            found[name] = Deployment(
                name=name,
                target="sagemaker",
                status=DELETED,
                source="(reconciled from AWS)",
                created_at=stamp,
                updated_at=now,
                region=aws.region,
            )
        return found[name]

    sm = ctx.sagemaker
    for kind, arn_key, name_key in (
        ("endpoints", "EndpointArn", "EndpointName"),
        ("endpoint_configs", "EndpointConfigArn", "EndpointConfigName"),
        ("models", "ModelArn", "ModelName"),
    ):
        for summary in sm.list(kind):
            tags = sm.tags(summary[arn_key])
            if TAG_KEY not in tags:
                continue
            dep = record(tags[TAG_KEY], summary.get("CreationTime"))
            dep.expires_at = dep.expires_at or tags.get(EXPIRES_TAG)
            dep.add(kind[:-1].replace("_", "-"), summary[name_key])
    for repo in ctx.ecr.repositories("shipyard/"):
        tags = ctx.ecr.tags(repo["repositoryArn"])
        if TAG_KEY in tags:
            record(tags[TAG_KEY]).add("ecr-repository", repo["repositoryName"])
    for role in ctx.iam.roles(ROLE_PATH):
        tags = ctx.iam.tags(role)
        if TAG_KEY in tags:
            names = Names(tags[TAG_KEY])
            kind = {names.api_role: "api-role", names.guard_role: "guard-role"}.get(role, "role")
            record(tags[TAG_KEY]).add(kind, role)
    _public_api(ctx, record, found)
    for group in ctx.logs.groups("/aws/sagemaker/Endpoints/"):
        tags = ctx.logs.tags(group)
        if TAG_KEY in tags:
            record(tags[TAG_KEY]).add("log-group", group)

    bucket = bucket or default_bucket(aws.region, aws.account)
    for name, dep in found.items():
        names = Names(name)
        if ctx.s3.keys(bucket, names.prefix):
            dep.add("s3-prefix", f"s3://{bucket}/{names.prefix}")
        dep.details.bucket = bucket
        _describe(ctx, dep)
        _watchers(ctx, dep)
        _guards(ctx, dep)
    return found


def _public_api(ctx: Context, record: Callable[[str], Deployment], found: dict[str, Deployment]) -> None:
    """The parts of a public API (``expose``): its REST API, usage plan and key by their tag, the key's secret
    by its name; so that ``cleanup`` removes them (the exposure itself is not rebuilt: `unexpose` then
    `expose` makes it again)."""
    for kind, ident, name in ctx.apigateway.tagged(TAG_KEY):
        record(name).add(kind, ident)
    for name, dep in found.items():
        secret = key_secret_name(name)
        if (ctx.secrets.tags(secret) or {}).get(TAG_KEY) == name:
            dep.add("api-key-secret", secret)


def _watchers(ctx: Context, dep: Deployment) -> None:
    """The alarms, dashboard and topic of ``dep`` (deploy/sagemaker/alarms.py), found by their names."""
    names = Names(dep.name)
    for alarm in ctx.cloudwatch.describe_alarms([names.alarm(metric) for metric in METRICS]):
        dep.add("alarm", alarm.name)
    if ctx.cloudwatch.get_dashboard(names.dashboard) is not None:
        dep.add("dashboard", names.dashboard)
    topic = ctx.sns.find_topic(names.topic)
    if topic:
        dep.add("sns-topic", topic)


def _guards(ctx: Context, dep: Deployment) -> None:
    """The spend guards of ``dep`` (deploy/sagemaker/guards.py), found by their exact names: the TTL schedule, the
    idle alarm, the idle rule and its state machine (the guard role comes with the roles, by its tag)."""
    names = Names(dep.name)
    schedule = ctx.scheduler.get(names.ttl_schedule)
    if schedule is not None:
        dep.add("ttl-schedule", names.ttl_schedule)
        at = one_time_at(str(schedule.get("ScheduleExpression", "")))
        if at:  # the schedule is the truth (an update's --ttl moved it, not the tag); its time is UTC
            dep.expires_at = datetime.fromisoformat(at).replace(tzinfo=UTC).isoformat()
    if ctx.events.describe_rule(names.idle) is not None:
        dep.add("idle-rule", names.idle)
    machine = machine_arn(ctx.aws, names)
    if ctx.stepfunctions.describe(machine) is not None:
        dep.add("state-machine", machine)
    for alarm in ctx.cloudwatch.describe_alarms([names.idle]):
        dep.add("idle-alarm", names.idle)
        if dep.options is not None and alarm.period_s and alarm.evaluation_periods:
            idle = timedelta(seconds=alarm.period_s * alarm.evaluation_periods)
            action = "delete" if dep.one("state-machine") else "notify"
            notify = alarm.actions[0] if alarm.actions and alarm.actions[0] != dep.one("sns-topic") else None
            with contextlib.suppress(SpecError):  # a notify-only guard whose email is not on AWS: not kept
                dep.options = dep.options.replace(idle=idle, idle_action=action, notify=dep.options.notify or notify)


def _describe(ctx: Context, dep: Deployment) -> None:
    """Status, image, size and options from the live endpoint (when there is one)."""
    endpoint = dep.one("endpoint")
    described = ctx.sagemaker.describe_endpoint(endpoint) if endpoint else None
    if described is None:
        return
    dep.status = str(described["EndpointStatus"])
    dep.failure = described.get("FailureReason")
    config_name = str(described["EndpointConfigName"])
    dep.details.endpoint_config = config_name
    config = ctx.sagemaker.describe_endpoint_config(config_name) or {}
    variant = (config.get("ProductionVariants") or [{}])[0]
    dep.details.model = variant.get("ModelName")
    size: dict[str, Any] = {}
    if "ServerlessConfig" in variant:
        serverless = variant["ServerlessConfig"]
        size["serverless"] = Serverless(serverless["MemorySizeInMB"], serverless["MaxConcurrency"])
        dep.instance_type, dep.instance_count = None, 0
    else:
        dep.instance_type = variant.get("InstanceType")
        live = (described.get("ProductionVariants") or [{}])[0]
        dep.instance_count = int(live.get("CurrentInstanceCount") or variant.get("InitialInstanceCount") or 1)
        size.update(instance_type=dep.instance_type, instance_count=dep.instance_count)
    model = ctx.sagemaker.describe_model(dep.details.model) if dep.details.model else None
    secrets: tuple[SecretRef, ...] = ()
    if model:
        dep.image = model.get("PrimaryContainer", {}).get("Image")
        dep.details.role_arn = model.get("ExecutionRoleArn")
        env = model.get("PrimaryContainer", {}).get("Environment", {})
        dep.env_keys = sorted(k for k in env if k not in {"SAGEMAKER_REGION", "SHIPYARD_SECRETS"})
        secrets = tuple(SecretRef.parse(s) for s in env.get("SHIPYARD_SECRETS", "").split(",") if s)
    with contextlib.suppress(SpecError):  # what AWS holds but Shipyard would not make: no options kept
        dep.options = DeployOptions(
            source=dep.source, name=dep.name, target="sagemaker", region=dep.region, secrets=secrets, **size
        )
    if ctx.scaling.target(dep.name, "AllTraffic"):
        dep.add("autoscaling", f"endpoint/{dep.name}/variant/AllTraffic")
