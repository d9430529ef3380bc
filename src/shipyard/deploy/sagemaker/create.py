"""``deploy --target sagemaker``: role → log group → ECR + push → S3 → Model → EndpointConfig → Endpoint
→ wait → autoscaling, each resource recorded in the state the moment it exists."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.bundle.archive import is_archive, pack
from shipyard.cloud.iam import sagemaker_trust_policy
from shipyard.cloud.s3 import default_bucket
from shipyard.deploy.base import CREATING, IN_SERVICE, DeployRun
from shipyard.deploy.images import ImageService, ResolvedImage
from shipyard.deploy.multimodel import archive_name, image_source, models_in
from shipyard.deploy.options import PROVISION_S, DeployOptions
from shipyard.deploy.sagemaker import alarms, guards
from shipyard.deploy.sagemaker.asynchronous import (
    NO_CAPACITY_METRIC,
    async_environment,
    async_inference_config,
    async_statements,
    backlog_metric,
    from_zero_alarm,
    input_prefix,
    resolve_topics,
)
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.guard import ROLLBACK_METRICS
from shipyard.deploy.sagemaker.names import POLICY_NAME, ROLE_PATH, VARIANT
from shipyard.deploy.sagemaker.policy import execution_policy
from shipyard.deploy.sagemaker.push import PushedImage, publish
from shipyard.deploy.sagemaker.waiter import wait_in_service
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError, SpecError

__all__ = ["Preflight", "Version", "create_version", "deploy", "preflight"]


@dataclass(frozen=True)
class Preflight:
    account: str
    partition: str
    bucket: str
    secret_arns: dict[str, str]
    topics: dict[str, str] = field(default_factory=dict)  # --async: the success/error SNS topics' ARNs


@dataclass(frozen=True)
class Version:
    """One version of a deployment about to be made: its label, its image, what AWS said before."""

    label: str
    resolved: ResolvedImage
    checks: Preflight
    registry_override: str | None = None


def preflight(ctx: Context, options: DeployOptions, *, update: bool = False) -> Preflight:
    """Every check that needs AWS, before the first resource is created."""
    ctx.aws.check_region("sagemaker")
    ctx.aws.check_credentials()
    identity = ctx.aws.identity()  # refused credentials, or a region the account cannot use, stop here
    existing = ctx.sagemaker.describe_endpoint(ctx.names.endpoint)
    if existing is not None and not update:
        raise SpecError(
            f"an endpoint named {ctx.names.endpoint} already exists in {ctx.aws.region} "
            f"({existing.get('EndpointStatus')}): update it with `shipyard deploy --update {ctx.names.endpoint} ...` "
            "or choose another name",
            option="name",
        )
    if existing is None and update:
        raise DeployError(f"there is no endpoint {ctx.names.endpoint} in {ctx.aws.region} to update")
    secret_arns = {s.name: ctx.secrets.arn(s.name) for s in options.secrets}
    _check_topic(ctx, options)
    if options.role_arn and not options.role_arn.startswith("arn:"):
        raise SpecError(
            f"role_arn {options.role_arn!r} is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)", option="role_arn"
        )
    topics = resolve_topics(options.asynchronous, ctx.sns.find_topic, ctx.sns.exists) if options.asynchronous else {}
    return Preflight(
        account=identity.account,
        partition=identity.partition,
        bucket=options.bucket or default_bucket(ctx.aws.region, identity.account),
        secret_arns=secret_arns,
        topics=topics,
    )


def _check_topic(ctx: Context, options: DeployOptions) -> None:
    """A given ``--notify`` topic must exist before anything is created (the alarms come last)."""
    notify = options.notify
    watched = options.alarms or options.idle is not None
    if watched and notify and notify.startswith("arn:") and not ctx.sns.exists(notify):
        raise SpecError(f"notify {notify}: there is no such SNS topic (in this account and region)", option="notify")


def resolve_image(images: ImageService, run: DeployRun) -> ResolvedImage:
    """The image a SageMaker deployment of ``run.options`` runs (built from the bundle when the source is one)."""
    options = run.options
    return images.resolve(
        image_source(options.source, options.image) if options.multi_model else options.source,
        name=options.name,
        bake_model=options.serverless is not None,  # serverless endpoints take no ModelDataUrl
        image=options.image,
        base=options.base_image,
        reporter=run.reporter,
        with_aws=bool(options.secrets),  # the server reads the secrets with boto3 at start
    )


def deploy(
    ctx: Context, run: DeployRun, images: ImageService, *, version: str, poll_s: float, registry: str | None
) -> Deployment:
    """role → log group → ECR + push → S3 → Model → EndpointConfig → Endpoint → wait → autoscaling."""
    checks = preflight(ctx, run.options)
    record = run.record
    record.region = ctx.aws.region
    record.details.account, record.details.bucket = checks.account, checks.bucket
    resolved = resolve_image(images, run)
    _role(ctx, run, checks)
    _log_group(ctx, run)
    this = Version(version, resolved, checks, registry)
    pushed = push_image(ctx, run, images, this, create=True)
    create_version(ctx, run, this, image_uri=pushed.uri)
    _endpoint(ctx, run, poll_s)
    attach_autoscaling(ctx, run)
    alarms.ensure(ctx, run)
    guards.ensure(ctx, run)
    record.touch(IN_SERVICE)
    run.save()
    return record


def _role(ctx: Context, run: DeployRun, checks: Preflight) -> None:
    """1. the execution role (or the one given)"""
    names, record = ctx.names, run.record
    if run.options.role_arn:
        record.add("role", run.options.role_arn, owned=False)
        record.details.role_arn = run.options.role_arn
        return
    record.details.role_arn = ctx.iam.create_role(
        names.role,
        trust=sagemaker_trust_policy(checks.account),
        path=ROLE_PATH,
        tags=ctx.tag_list,
        description=f"SageMaker execution role of the Shipyard deployment {record.name}",
    )
    record.add("role", names.role)
    run.save()
    ctx.iam.put_policy(names.role, POLICY_NAME, role_policy(ctx, run.options, checks))
    run.step(f"IAM role {names.role} (least-privilege policy {POLICY_NAME})")


def _log_group(ctx: Context, run: DeployRun) -> None:
    """2. the log group first, so its retention applies from the container's first line"""
    days = run.options.log_retention_days
    ctx.logs.create_group(ctx.names.log_group, retention_days=days, tags=ctx.tags)
    run.record.add("log-group", ctx.names.log_group)
    run.save()
    run.step(f"log group {ctx.names.log_group} (retention {days} days)")


def push_image(ctx: Context, run: DeployRun, images: ImageService, version: Version, *, create: bool) -> PushedImage:
    """3. the repository and the image (a deploy records the repository; an update finds it there)"""
    repository = ctx.ecr.create_repository(ctx.names.repository, tags=ctx.tag_list)
    if create:
        run.record.add("ecr-repository", ctx.names.repository)
        run.save()
    pushed = publish(
        images,
        ctx.ecr,
        image=version.resolved.image,
        repository=repository,
        tag=version.label,
        registry_override=version.registry_override,
    )
    if create:
        run.record.image = pushed.uri
        run.save()
        run.step(f"image {pushed.uri} (scan on push, immutable tags)")
    else:
        run.step(f"image {pushed.uri}")
    return pushed


def _endpoint(ctx: Context, run: DeployRun, poll_s: float) -> None:
    """6. the endpoint, and the wait for it"""
    names, record = ctx.names, run.record
    since_ms = int(time.time() * 1000)
    config = record.details.endpoint_config or ""
    ctx.sagemaker.create_endpoint(names.endpoint, config=config, tags=ctx.tag_list)
    record.add("endpoint", names.endpoint)
    record.touch(CREATING)
    run.save()
    run.step(f"endpoint {names.endpoint} ({_describe_variant(run.options)})")
    wait_for(ctx, run, poll_s, since_ms=since_ms)


def wait_for(
    ctx: Context,
    run: DeployRun,
    poll_s: float,
    *,
    since_ms: int | None = None,
    timeout_s: float | None = None,
    watch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Wait until the endpoint is InService (see :func:`wait_in_service`); by default as long as provisioning
    and the container's start may take."""
    return wait_in_service(
        ctx.sagemaker,
        ctx.logs,
        endpoint=ctx.names.endpoint,
        log_group=ctx.names.log_group,
        reporter=run.reporter,
        timeout_s=timeout_s if timeout_s is not None else run.options.startup_timeout_s + PROVISION_S,
        poll_s=poll_s,
        since_ms=since_ms,
        watch=watch,
    )


def create_version(ctx: Context, run: DeployRun, version: Version, *, image_uri: str) -> None:
    """S3 artifact → Model → EndpointConfig for one version (shared by deploy and update)."""
    names, record, options = ctx.names, run.record, run.options
    model_data_url = _upload_model(ctx, run, version)
    # 5. the Model and the EndpointConfig
    model = names.model(version.label)
    ctx.sagemaker.create_model(
        model,
        image=image_uri,
        role_arn=record.details.role_arn or "",
        model_data_url=model_data_url,
        environment=_environment(options, ctx.aws.region),
        tags=ctx.tag_list,
        mode="MultiModel" if options.multi_model else "SingleModel",
    )
    record.add("model", model)
    run.save()
    config = names.endpoint_config(version.label)
    ctx.sagemaker.create_endpoint_config(
        config,
        variant=production_variant(options, model),
        data_capture=_data_capture(options, version.checks.bucket, names.capture_prefix()),
        tags=ctx.tag_list,
        async_inference=(
            async_inference_config(
                options.asynchronous, bucket=version.checks.bucket, name=run.record.name, topics=version.checks.topics
            )
            if options.asynchronous is not None
            else None
        ),
    )
    record.add("endpoint-config", config)
    if options.asynchronous is not None:
        _async_prefix(ctx, run, version.checks.bucket)
    record.details.model, record.details.endpoint_config, record.details.version = model, config, version.label
    _describe_record(record, options)
    run.save()
    run.step(f"model {model} and endpoint config {config}")


def _upload_model(ctx: Context, run: DeployRun, version: Version) -> str | None:
    """4. model.tar.gz, encrypted and tagged; serverless endpoints get the model inside the image instead"""
    bundle, bucket = version.resolved.bundle, version.checks.bucket
    if run.options.multi_model:
        return _upload_models(ctx, run, bucket)
    if bundle is None or run.options.serverless is not None:
        return None
    if not ctx.s3.bucket_exists(bucket):
        ctx.s3.create_bucket(bucket)
        run.step(f"S3 bucket {bucket} (private, encrypted)")
    run.record.add("s3-prefix", f"s3://{bucket}/{ctx.names.prefix}")
    run.save()
    with tempfile.TemporaryDirectory(prefix="shipyard-deploy-") as tmp:
        archive = bundle if is_archive(bundle) else pack(bundle, Path(tmp) / "model.tar.gz")
        url = ctx.s3.upload(archive, bucket, ctx.names.artifact_key(version.label), tags=ctx.tags)
    run.step(f"model artifact {url} (SSE)")
    return url


def _async_prefix(ctx: Context, run: DeployRun, bucket: str) -> None:
    """--async: the bucket the inputs go to exists, and ``async/NAME/`` (inputs; answers and errors unless sent
    elsewhere) is this deployment's, for cleanup to delete (``--keep-artifacts`` keeps it)."""
    if not ctx.s3.bucket_exists(bucket):
        ctx.s3.create_bucket(bucket)
        run.step(f"S3 bucket {bucket} (private, encrypted)")
    run.record.add("s3-prefix", input_prefix(bucket, run.record.name).removesuffix("input/"))


def _upload_models(ctx: Context, run: DeployRun, bucket: str) -> str:
    """4. a multi-model endpoint's ModelDataUrl: the S3 prefix given, or the directory's models uploaded under
    the deployment's prefix (``s3://BUCKET/shipyard/NAME/models/``), each as the TargetModel it is invoked by"""
    source = run.options.source
    if source.startswith("s3://"):
        run.step(f"models under {source} (MultiModel)")
        return source
    if not ctx.s3.bucket_exists(bucket):
        ctx.s3.create_bucket(bucket)
        run.step(f"S3 bucket {bucket} (private, encrypted)")
    run.record.add("s3-prefix", f"s3://{bucket}/{ctx.names.prefix}")
    run.save()
    key_prefix = multi_model_prefix(ctx)
    models = models_in(source)
    with tempfile.TemporaryDirectory(prefix="shipyard-deploy-") as tmp:
        for model in models:
            archive = model if is_archive(model) else pack(model, Path(tmp) / model.name / "model.tar.gz")
            ctx.s3.upload(archive, bucket, key_prefix + archive_name(model), tags=ctx.tags)
    url = f"s3://{bucket}/{key_prefix}"
    run.step(f"{len(models)} models under {url} (MultiModel, SSE)")
    return url


def multi_model_prefix(ctx: Context) -> str:
    """The key prefix of a multi-model endpoint's models that Shipyard uploaded (deploy --multi-model DIR)."""
    return f"{ctx.names.prefix}models/"


def attach_autoscaling(ctx: Context, run: DeployRun) -> None:
    autoscale, asynchronous = run.options.autoscale, run.options.asynchronous
    if autoscale is None:
        return
    # an async endpoint scales on its queue (requests waiting per instance), down to zero when asked
    backlog = asynchronous.backlog_per_instance if asynchronous is not None else None
    ctx.scaling.attach(
        ctx.names.endpoint,
        VARIANT,
        minimum=autoscale.minimum,
        maximum=autoscale.maximum,
        target_invocations_per_minute=backlog if backlog is not None else autoscale.target_per_minute,
        policy_name=ctx.names.scaling_policy,
        tags=ctx.tags,
        metric=backlog_metric(ctx.names.endpoint) if backlog is not None else None,
    )
    run.record.add("autoscaling", f"endpoint/{ctx.names.endpoint}/variant/{VARIANT}")
    run.save()
    if backlog is not None and autoscale.minimum == 0:
        _scale_from_zero(ctx, run)
    target = (
        f"{backlog:g} queued requests per instance (ApproximateBacklogSizePerInstance)"
        if backlog is not None
        else f"{autoscale.target_per_minute:g} invocations per instance per minute"
    )
    run.step(f"autoscaling {autoscale.minimum}–{autoscale.maximum} instances, target {target}")


def _scale_from_zero(ctx: Context, run: DeployRun) -> None:
    """An async endpoint at 0 instances: a step policy adds the first one when its alarm sees requests waiting."""
    policy_arn = ctx.scaling.attach_step(
        ctx.names.endpoint, VARIANT, policy_name=f"{ctx.names.scaling_policy}-from-zero"
    )
    name = ctx.names.alarm(NO_CAPACITY_METRIC)
    ctx.cloudwatch.put_metric_alarm(
        from_zero_alarm(name, ctx.names.endpoint), actions=[policy_arn], ok_actions=[], tags=ctx.tag_list
    )
    run.record.add("scaling-alarm", name)
    run.save()
    run.step(f"scale-from-zero: alarm {name} on {NO_CAPACITY_METRIC} adds an instance")


def production_variant(options: DeployOptions, model: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model}
    if options.serverless is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": options.serverless.memory_mb,
            "MaxConcurrency": options.serverless.max_concurrency,
        }
        return variant
    variant.update(
        InstanceType=options.instance_type,
        InitialInstanceCount=options.instance_count,
        InitialVariantWeight=1.0,
        ContainerStartupHealthCheckTimeoutInSeconds=options.startup_timeout_s,
    )
    return variant


def role_policy(ctx: Context, options: DeployOptions, checks: Preflight) -> dict[str, Any]:
    policy = execution_policy(
        partition=checks.partition,
        region=ctx.aws.region,
        account=checks.account,
        repository=ctx.names.repository,
        bucket=checks.bucket,
        prefix=ctx.names.prefix,
        log_group=ctx.names.log_group,
        secret_arns=list(checks.secret_arns.values()),
        capture_prefix=ctx.names.capture_prefix() if options.data_capture_pct else None,
        alarm_names=[ctx.names.alarm(metric) for metric in ROLLBACK_METRICS] if options.alarms else None,
        models_url=options.source if options.multi_model and options.source.startswith("s3://") else None,
    )
    if options.asynchronous is not None:
        policy["Statement"] += async_statements(
            options.asynchronous, partition=checks.partition, bucket=checks.bucket, name=options.name,
            topics=checks.topics,
        )  # fmt: skip
    return policy


def _environment(options: DeployOptions, region: str) -> dict[str, str]:
    env = {**async_environment(options), **options.env}
    env.setdefault("SAGEMAKER_REGION", region)
    if options.multi_model:  # the server's multi-model routes (serving/multimodel.py)
        env["SAGEMAKER_MULTI_MODEL"] = "true"
    if options.secrets:
        # Names only: the server reads the values with the endpoint's role when it starts.
        env["SHIPYARD_SECRETS"] = ",".join(str(s) for s in options.secrets)
    return env


def _data_capture(options: DeployOptions, bucket: str, prefix: str) -> dict[str, Any] | None:
    if not options.data_capture_pct:
        return None
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": options.data_capture_pct,
        "DestinationS3Uri": f"s3://{bucket}/{prefix}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
    }


def _describe_variant(options: DeployOptions) -> str:
    if options.serverless is not None:
        return f"serverless {options.serverless.memory_mb} MB, up to {options.serverless.max_concurrency} concurrent"
    return f"{options.instance_count} × {options.instance_type}"


def _describe_record(record: Deployment, options: DeployOptions) -> None:
    """The record of a version: its options (kept once), the size it starts at, its variables' names."""
    record.options = options
    if options.serverless is not None:
        record.instance_type, record.instance_count = None, 0
    else:
        record.instance_type, record.instance_count = options.instance_type, options.instance_count
    record.env_keys = sorted(options.env)
