"""``deploy --target sagemaker``: role → log group → ECR + push → S3 → Model → EndpointConfig → Endpoint
→ wait → autoscaling, each resource recorded in the state the moment it exists."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.bundle.archive import is_archive, pack
from shipyard.cloud.iam import sagemaker_trust_policy
from shipyard.cloud.s3 import default_bucket
from shipyard.cloud.session import TAG_KEY, tag_list
from shipyard.deploy.base import CREATING, IN_SERVICE, Reporter, Save
from shipyard.deploy.images import ImageService, ResolvedImage
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import POLICY_NAME, ROLE_PATH, VARIANT
from shipyard.deploy.sagemaker.policy import execution_policy
from shipyard.deploy.sagemaker.push import publish
from shipyard.deploy.sagemaker.waiter import wait_in_service
from shipyard.deploy.spec import DeploySpec
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError, SpecError

__all__ = ["Preflight", "create_version", "deploy", "preflight", "tags_for"]

EXPIRES_TAG = "shipyard:expires-at"


@dataclass(frozen=True)
class Preflight:
    account: str
    partition: str
    bucket: str
    secret_arns: dict[str, str]


def tags_for(record: Deployment) -> dict[str, str]:
    tags = {TAG_KEY: record.name}
    if record.expires_at:
        tags[EXPIRES_TAG] = record.expires_at
    return tags


def preflight(ctx: Context, spec: DeploySpec, *, update: bool = False) -> Preflight:
    """Every check that needs AWS, before the first resource is created."""
    ctx.aws.check_region("sagemaker")
    ctx.aws.check_credentials()
    identity = ctx.aws.identity()  # refused credentials, or a region the account cannot use, stop here
    existing = ctx.sagemaker.describe_endpoint(ctx.names.endpoint)
    if existing is not None and not update:
        raise SpecError(
            f"an endpoint named {ctx.names.endpoint} already exists in {ctx.aws.region} "
            f"({existing.get('EndpointStatus')}): update it with `shipyard deploy --update {ctx.names.endpoint} ...` "
            "or choose another --name"
        )
    if existing is None and update:
        raise DeployError(f"there is no endpoint {ctx.names.endpoint} in {ctx.aws.region} to update")
    secret_arns = {s.name: ctx.secrets.arn(s.name) for s in spec.secrets}
    if spec.role_arn and not spec.role_arn.startswith("arn:"):
        raise SpecError(f"--role-arn {spec.role_arn!r} is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return Preflight(
        account=identity.account,
        partition=identity.partition,
        bucket=spec.bucket or default_bucket(ctx.aws.region, identity.account),
        secret_arns=secret_arns,
    )


def resolve_image(images: ImageService, spec: DeploySpec, reporter: Reporter) -> ResolvedImage:
    """The image a SageMaker deployment of ``spec`` runs (built from the bundle when the source is one)."""
    return images.resolve(
        spec.source,
        name=spec.name,
        bake_model=spec.serverless is not None,  # serverless endpoints take no ModelDataUrl
        image=spec.image,
        base=spec.base_image,
        reporter=reporter,
        with_aws=bool(spec.secrets),  # the server reads the secrets with boto3 at start
    )


def deploy(
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
    checks = preflight(ctx, spec)
    names = ctx.names
    tags = tags_for(record)
    record.region = ctx.aws.region
    record.details.update(account=checks.account, bucket=checks.bucket)

    resolved = resolve_image(images, spec, reporter)

    # 1. the execution role (or the one given)
    if spec.role_arn:
        role_arn = spec.role_arn
        record.add("role", role_arn, owned=False)
    else:
        role_arn = ctx.iam.create_role(
            names.role,
            trust=sagemaker_trust_policy(checks.account),
            path=ROLE_PATH,
            tags=tag_list(record.name, _extra(tags)),
            description=f"SageMaker execution role of the Shipyard deployment {record.name}",
        )
        record.add("role", names.role)
        save(record)
        ctx.iam.put_policy(names.role, POLICY_NAME, role_policy(ctx, spec, checks))
        reporter.step(f"IAM role {names.role} (least-privilege policy {POLICY_NAME})")
    record.details["role_arn"] = role_arn

    # 2. the log group first, so its retention applies from the container's first line
    ctx.logs.create_group(names.log_group, retention_days=spec.log_retention_days, tags=tags)
    record.add("log-group", names.log_group)
    save(record)
    reporter.step(f"log group {names.log_group} (retention {spec.log_retention_days} days)")

    # 3. the repository and the image
    repository = ctx.ecr.create_repository(names.repository, tags=tag_list(record.name, _extra(tags)))
    record.add("ecr-repository", names.repository)
    save(record)
    pushed = publish(
        images,
        ctx.ecr,
        image=resolved.image,
        repository=repository,
        tag=version,
        registry_override=spec.registry_override,
    )
    record.image = pushed.uri
    save(record)
    reporter.step(f"image {pushed.uri} (scan on push, immutable tags)")

    create_version(ctx, spec, record, save, reporter, resolved, version=version, image_uri=pushed.uri, checks=checks)

    # 6. the endpoint
    config = record.details["endpoint_config"]
    since_ms = int(time.time() * 1000)
    ctx.sagemaker.create_endpoint(names.endpoint, config=config, tags=tag_list(record.name, _extra(tags)))
    record.add("endpoint", names.endpoint)
    record.touch(CREATING)
    save(record)
    reporter.step(f"endpoint {names.endpoint} ({_describe_variant(spec)})")
    wait_in_service(
        ctx.sagemaker,
        ctx.logs,
        endpoint=names.endpoint,
        log_group=names.log_group,
        reporter=reporter,
        timeout_s=spec.startup_timeout_s + 1800,  # instance provisioning comes before the container's start
        poll_s=poll_s,
        since_ms=since_ms,
    )
    attach_autoscaling(ctx, spec, record, save, reporter)
    record.touch(IN_SERVICE)
    save(record)
    return record


def create_version(
    ctx: Context,
    spec: DeploySpec,
    record: Deployment,
    save: Save,
    reporter: Reporter,
    resolved: ResolvedImage,
    *,
    version: str,
    image_uri: str,
    checks: Preflight,
) -> None:
    """S3 artifact → Model → EndpointConfig for one version (shared by deploy and update)."""
    names = ctx.names
    tags = tags_for(record)
    model_data_url = None
    if resolved.bundle is not None and spec.serverless is None:
        # 4. model.tar.gz, encrypted and tagged; serverless endpoints get the model inside the image instead
        if not ctx.s3.bucket_exists(checks.bucket):
            ctx.s3.create_bucket(checks.bucket)
            reporter.step(f"S3 bucket {checks.bucket} (private, encrypted)")
        record.add("s3-prefix", f"s3://{checks.bucket}/{names.prefix}")
        save(record)
        with tempfile.TemporaryDirectory(prefix="shipyard-deploy-") as tmp:
            archive = (
                resolved.bundle if is_archive(resolved.bundle) else pack(resolved.bundle, Path(tmp) / "model.tar.gz")
            )
            model_data_url = ctx.s3.upload(archive, checks.bucket, names.artifact_key(version), tags=tags)
        reporter.step(f"model artifact {model_data_url} (SSE)")

    # 5. the Model and the EndpointConfig
    model = names.model(version)
    ctx.sagemaker.create_model(
        model,
        image=image_uri,
        role_arn=record.details["role_arn"],
        model_data_url=model_data_url,
        environment=_environment(spec, ctx.aws.region),
        tags=tag_list(record.name, _extra(tags)),
    )
    record.add("model", model)
    save(record)
    config = names.endpoint_config(version)
    ctx.sagemaker.create_endpoint_config(
        config,
        variant=production_variant(spec, model),
        data_capture=_data_capture(spec, checks.bucket, names.capture_prefix()),
        tags=tag_list(record.name, _extra(tags)),
    )
    record.add("endpoint-config", config)
    record.details.update(model=model, endpoint_config=config, version=version)
    _describe_record(record, spec)
    save(record)
    reporter.step(f"model {model} and endpoint config {config}")


def attach_autoscaling(ctx: Context, spec: DeploySpec, record: Deployment, save: Save, reporter: Reporter) -> None:
    if spec.autoscale is None:
        return
    ctx.scaling.attach(
        ctx.names.endpoint,
        VARIANT,
        minimum=spec.autoscale.minimum,
        maximum=spec.autoscale.maximum,
        target_invocations_per_minute=spec.autoscale.target_per_minute,
        policy_name=ctx.names.scaling_policy,
        tags=tags_for(record),
    )
    record.add("autoscaling", f"endpoint/{ctx.names.endpoint}/variant/{VARIANT}")
    save(record)
    reporter.step(
        f"autoscaling {spec.autoscale.minimum}–{spec.autoscale.maximum} instances, target "
        f"{spec.autoscale.target_per_minute:g} invocations per instance per minute"
    )


def production_variant(spec: DeploySpec, model: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model}
    if spec.serverless is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": spec.serverless.memory_mb,
            "MaxConcurrency": spec.serverless.max_concurrency,
        }
        return variant
    variant.update(
        InstanceType=spec.instance_type,
        InitialInstanceCount=spec.instance_count,
        InitialVariantWeight=1.0,
        ContainerStartupHealthCheckTimeoutInSeconds=spec.startup_timeout_s,
    )
    return variant


def role_policy(ctx: Context, spec: DeploySpec, checks: Preflight) -> dict[str, Any]:
    return execution_policy(
        partition=checks.partition,
        region=ctx.aws.region,
        account=checks.account,
        repository=ctx.names.repository,
        bucket=checks.bucket,
        prefix=ctx.names.prefix,
        log_group=ctx.names.log_group,
        secret_arns=list(checks.secret_arns.values()),
        capture_prefix=ctx.names.capture_prefix() if spec.data_capture_pct else None,
    )


def _environment(spec: DeploySpec, region: str) -> dict[str, str]:
    env = dict(spec.env)
    env.setdefault("SAGEMAKER_REGION", region)
    if spec.secrets:
        # Names only: the server reads the values with the endpoint's role when it starts.
        env["SHIPYARD_SECRETS"] = ",".join(str(s) for s in spec.secrets)
    return env


def _data_capture(spec: DeploySpec, bucket: str, prefix: str) -> dict[str, Any] | None:
    if not spec.data_capture_pct:
        return None
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": spec.data_capture_pct,
        "DestinationS3Uri": f"s3://{bucket}/{prefix}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
    }


def _extra(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k != TAG_KEY}


def _describe_variant(spec: DeploySpec) -> str:
    if spec.serverless is not None:
        return f"serverless {spec.serverless.memory_mb} MB, up to {spec.serverless.max_concurrency} concurrent"
    return f"{spec.instance_count} × {spec.instance_type}"


def _describe_record(record: Deployment, spec: DeploySpec) -> None:
    if spec.serverless is not None:
        record.instance_type, record.instance_count = None, 0
        record.serverless = {"memory_mb": spec.serverless.memory_mb, "max_concurrency": spec.serverless.max_concurrency}
    else:
        record.instance_type, record.instance_count, record.serverless = spec.instance_type, spec.instance_count, None
    record.autoscale = (
        None
        if spec.autoscale is None
        else {
            "min": spec.autoscale.minimum,
            "max": spec.autoscale.maximum,
            "target_per_minute": spec.autoscale.target_per_minute,
        }
    )
    record.env_keys = sorted(spec.env)
    record.secrets = [str(s) for s in spec.secrets]
