"""``shipyard train --target sagemaker``: the same training image, run as a SageMaker training job.

image → ECR (by digest) → local channels to S3 (``s3://`` ones used as they are) → a least-privilege execution
role (or the one given) → CreateTrainingJob → wait (status as phases, the CloudWatch log streamed, metrics parsed
from it) → the record: the model artifact, final metrics, billable seconds, the spot saving and the cost.

The record (``run``) arrives saved with its name, code version and the local channels' versions; each step
saves it again. Ctrl-C while waiting asks ``ctx.on_interrupt``: True stops the job (StopTrainingJob, then the
wait for Stopped), False leaves it running and returns the record as InProgress (``shipyard runs`` shows it).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.cloud.ecr import EcrGateway
from shipyard.cloud.iam import IamGateway, sagemaker_trust_policy
from shipyard.cloud.logs import LogsGateway
from shipyard.cloud.s3 import S3Gateway, default_bucket, local_etag
from shipyard.cloud.session import Aws, tag_list, training_tags
from shipyard.cloud.training import JobLogs, TrainingGateway
from shipyard.deploy.sagemaker.push import ImagePusher, publish
from shipyard.errors import SpecError, TrainError, TrainFailed, TrainStopped
from shipyard.experiments.record import Channel, TrainRun
from shipyard.pricing import training_prices
from shipyard.train.api import TrainContext
from shipyard.train.options import TrainOptions
from shipyard.train.sagemaker_job import (
    POLICY_NAME,
    ROLE_PATH,
    JobFacts,
    TrainNames,
    job_request,
    training_policy,
)
from shipyard.train.sagemaker_wait import Waiter, utc
from shipyard.training.contract import encode_hyperparameters
from shipyard.training.metrics import MetricParser, default_regex

__all__ = ["SageMakerTraining", "run_sagemaker"]


@dataclass
class SageMakerTraining:
    """One run's view of AWS: its account, names, tags and a gateway per service (made on first use)."""

    aws: Aws
    names: TrainNames
    tags: dict[str, str] = field(default_factory=dict)
    account: str = ""
    partition: str = "aws"
    bucket: str = ""

    @functools.cached_property
    def iam(self) -> IamGateway:
        return IamGateway(self.aws)

    @functools.cached_property
    def ecr(self) -> EcrGateway:
        return EcrGateway(self.aws)

    @functools.cached_property
    def s3(self) -> S3Gateway:
        return S3Gateway(self.aws)

    @functools.cached_property
    def jobs(self) -> TrainingGateway:
        return TrainingGateway(self.aws)

    @functools.cached_property
    def logs(self) -> LogsGateway:
        return LogsGateway(self.aws)


def run_sagemaker(
    options: TrainOptions,
    run: TrainRun,
    ctx: TrainContext,
    image_tag: str,
    *,
    aws: Aws | None = None,
    pusher: ImagePusher | None = None,
    poll_s: float = 10.0,
) -> TrainRun:
    """Run ``options`` as the training job ``run.name`` with the local image ``image_tag``; the finished record.

    ``aws``: the account and region (default: boto3's, from the environment or profile); ``pusher``: what pushes
    the image (default: the container engine of ``ctx.settings``). Raises TrainFailed / TrainStopped (after the
    record is saved) as :func:`shipyard.train.train` documents."""
    sm = _prepare(options, run, ctx, aws or Aws())
    _push_image(sm, run, ctx, image_tag, pusher)
    inputs = _channels(sm, options, run, ctx)
    checkpoint_uri = _checkpoints(sm, options, run, ctx)
    output_uri = options.output or sm.names.output_uri(sm.bucket)
    if any(uri.startswith(f"s3://{sm.bucket}/") for uri in (output_uri, checkpoint_uri or "")):
        _ensure_bucket(sm, ctx)  # SageMaker writes only to a bucket that exists
    role_arn = _role(sm, options, ctx, inputs=inputs, output_uri=output_uri, checkpoint_uri=checkpoint_uri)
    facts = JobFacts(
        image=run.image or "",
        role_arn=role_arn,
        channels=inputs,
        output_uri=output_uri,
        checkpoint_uri=checkpoint_uri,
        metric_definitions=run.metric_definitions,
        hyperparameters=run.hyperparameters,
        tags=sm.tags,
    )
    run.extra.update(role=role_arn, output=output_uri, bucket=sm.bucket, account=sm.account)
    run.checkpoints = checkpoint_uri
    run.job_arn = sm.jobs.create(job_request(options, run.name, facts))
    ctx.phase(f"training job {run.name} ({options.instance_count} × {options.instance_type}{', spot' * options.spot})")
    ctx.status(run, "InProgress")
    return _wait(sm, run, ctx, poll_s)


def _prepare(options: TrainOptions, run: TrainRun, ctx: TrainContext, aws: Aws) -> SageMakerTraining:
    """Every check that needs AWS before anything is created; the run's record gets what they learned."""
    aws.check_region("sagemaker")
    aws.check_credentials()
    identity = aws.identity()
    sm = SageMakerTraining(
        aws,
        TrainNames(run.name, run.experiment or options.experiment_name),
        training_tags(run.name, run.experiment or options.experiment_name, options.tags),
        account=identity.account,
        partition=identity.partition,
        bucket=default_bucket(aws.region, identity.account),
    )
    if options.role and not options.role.startswith("arn:"):
        raise SpecError(f"role {options.role!r} is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)", option="role")
    existing = sm.jobs.describe(run.name)
    if existing is not None:  # AWS refuses a second job of one name (moto would overwrite it)
        raise SpecError(
            f"a training job named {run.name} already exists in {aws.region} ({existing['TrainingJobStatus']}): "
            "choose another --name",
            option="name",
        )
    run.region = aws.region
    run.instance_type, run.instance_count, run.spot = options.instance_type, options.instance_count, options.spot
    run.hyperparameters = run.hyperparameters or encode_hyperparameters(options.hyperparameters)
    run.metric_definitions = {
        name: regex if regex is not None else default_regex(name) for name, regex in options.metric_definitions.items()
    }
    ctx.store.save(run)
    return sm


def _push_image(
    sm: SageMakerTraining, run: TrainRun, ctx: TrainContext, image: str, pusher: ImagePusher | None
) -> None:
    """1. the experiment's repository and the image, which the job runs by digest"""
    repository = sm.ecr.create_repository(sm.names.repository, tags=tag_list(sm.tags))
    if sm.ecr.has_image(repository.name, run.name):  # tags are immutable: the job would run the older image
        raise SpecError(
            f"{repository.uri}:{run.name} already exists (an earlier run of this name pushed it): choose another "
            "--name",
            option="name",
        )
    if pusher is None:
        from shipyard.deploy.engine_images import EngineImages

        pusher = EngineImages(settings=ctx.settings)
    pushed = publish(
        pusher,
        sm.ecr,
        image=image,
        repository=repository,
        tag=run.name,
        registry_override=ctx.settings.ecr_registry,
    )
    digest = sm.ecr.image_digest(repository.name, run.name) or pushed.digest
    if not digest:
        raise TrainError(f"ECR has no digest for {pushed.uri} after the push: push it again with the same --name")
    run.image, run.image_digest = f"{repository.uri}@{digest}", digest
    ctx.store.save(run)
    ctx.phase(f"image {run.image}")


def _channels(sm: SageMakerTraining, options: TrainOptions, run: TrainRun, ctx: TrainContext) -> dict[str, str]:
    """2. each channel's S3 prefix: an s3:// one as it is (its version from the ETags), a local one uploaded"""
    recorded = {channel.name: channel for channel in run.channels}
    inputs: dict[str, str] = {}
    for name, source in options.channels.items():
        if source.startswith("s3://"):
            found = sm.s3.prefix_version(source)
            if found.files == 0:
                raise SpecError(f"channel {name}: there are no objects under {source}", option="channels")
            recorded[name] = Channel(name, source, found.version, size=found.size, files=found.files)
            inputs[name] = source
            ctx.phase(f"channel {name}: {source} ({found.files} objects, {found.version[:17]}…)")
            continue
        inputs[name] = _upload_channel(sm, name, Path(source).expanduser(), ctx)
        local = recorded.get(name)
        if local is None:  # no local version recorded: the uploaded objects' own
            found = sm.s3.prefix_version(inputs[name])
            local = Channel(name, inputs[name], found.version, size=found.size, files=found.files)
        recorded[name] = replace(local, uri=inputs[name])
        run.extra.setdefault("uploaded_from", {})[name] = str(Path(source).expanduser().resolve())
    run.channels = [recorded[name] for name in options.channels]
    ctx.store.save(run)
    return inputs


def _upload_channel(sm: SageMakerTraining, name: str, source: Path, ctx: TrainContext) -> str:
    _ensure_bucket(sm, ctx)
    uri = f"s3://{sm.bucket}/{sm.names.data_prefix(name, _content_digest(source))}"
    result = sm.s3.sync_up(source, uri, tags=sm.tags)
    if result.uploaded:
        ctx.phase(f"channel {name}: uploaded {result.uploaded} files ({result.bytes_sent / 1e6:.1f} MB) to {uri}")
    else:
        ctx.phase(f"channel {name}: {uri} (already uploaded: {result.skipped} files, same ETags)")
    return result.uri


def _content_digest(source: Path) -> str:
    """A digest of a file's or folder's names, sizes and ETags: the address of its upload."""
    digest = hashlib.sha256()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        relative = path.name if path == source else path.relative_to(source).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0{local_etag(path)}\n".encode())
    return digest.hexdigest()


def _ensure_bucket(sm: SageMakerTraining, ctx: TrainContext) -> None:
    if not sm.s3.bucket_exists(sm.bucket):
        sm.s3.create_bucket(sm.bucket)
        ctx.phase(f"S3 bucket {sm.bucket} (private, encrypted)")


def _checkpoints(sm: SageMakerTraining, options: TrainOptions, run: TrainRun, ctx: TrainContext) -> str | None:
    """3. the checkpoint prefix (spot or --checkpoints); a local folder's checkpoints are uploaded to resume from"""
    given = options.checkpoints
    if given is not None and given.startswith("s3://"):
        return given if given.endswith("/") else given + "/"
    if given is None and not options.spot:
        return None
    uri = sm.names.checkpoint_uri(sm.bucket)
    if given is not None and Path(given).expanduser().is_dir() and any(Path(given).expanduser().iterdir()):
        _ensure_bucket(sm, ctx)
        result = sm.s3.sync_up(Path(given).expanduser(), uri, tags=sm.tags)
        ctx.phase(f"checkpoints: {result.uploaded} files from {given} to {uri} (the job resumes from them)")
    return uri


def _role(
    sm: SageMakerTraining,
    options: TrainOptions,
    ctx: TrainContext,
    *,
    inputs: dict[str, str],
    output_uri: str,
    checkpoint_uri: str | None,
) -> str:
    """4. the execution role (or the one given, which Shipyard neither changes nor owns)"""
    if options.role:
        return options.role
    arn = sm.iam.create_role(
        sm.names.role,
        trust=sagemaker_trust_policy(sm.account),
        path=ROLE_PATH,
        tags=tag_list(sm.tags),
        description=f"SageMaker execution role of the Shipyard training run {sm.names.run}",
    )
    policy = training_policy(
        partition=sm.partition,
        region=sm.aws.region,
        account=sm.account,
        repository=sm.names.repository,
        inputs=list(inputs.values()),
        output_uri=output_uri,
        checkpoint_uri=checkpoint_uri,
    )
    sm.iam.put_policy(sm.names.role, POLICY_NAME, policy)
    ctx.phase(f"IAM role {sm.names.role} (least-privilege policy {POLICY_NAME})")
    return arn


def _wait(sm: SageMakerTraining, run: TrainRun, ctx: TrainContext, poll_s: float) -> TrainRun:
    """5. wait for the job, streaming its log; then the record of how it ended"""
    waiter = Waiter(ctx, run, sm.jobs, JobLogs(sm.logs, run.name), MetricParser(run.metric_definitions), poll_s)
    try:
        job = waiter.until_ended()
    except KeyboardInterrupt:
        if ctx.on_interrupt is None or not ctx.on_interrupt(run):
            ctx.phase(f"left running: the training job {run.name} goes on in {sm.aws.region}")
            ctx.status(run, "InProgress")
            return run
        ctx.phase(f"stopping the training job {run.name}")
        sm.jobs.stop(run.name)
        ctx.status(run, "Stopping")
        job = waiter.until_ended()
    return _finish(run, ctx, waiter, job)


def _finish(run: TrainRun, ctx: TrainContext, waiter: Waiter, job: dict[str, Any]) -> TrainRun:
    waiter.final_metrics(job)
    _record_job(run, job)
    run.log_tail = list(waiter.tail)
    status = str(job["TrainingJobStatus"])
    if status == "Failed":
        run.failure_reason = str(job.get("FailureReason") or "the job failed without a FailureReason")
        ctx.status(run, "Failed")
        raise TrainFailed(
            f"training job {run.name} failed: {run.failure_reason}",
            reason=run.failure_reason,
            log_tail=tuple(run.log_tail),
        )
    ctx.status(run, status)
    if status == "Stopped":
        raise TrainStopped(f"training job {run.name} was stopped")
    return run


def _record_job(run: TrainRun, job: dict[str, Any]) -> None:
    """The facts of the ended job: artifact, times, billable seconds, spot saving, cost."""
    artifacts = job.get("ModelArtifacts")
    if isinstance(artifacts, dict) and artifacts.get("S3ModelArtifacts"):
        run.model_artifact = str(artifacts["S3ModelArtifacts"])
    if job.get("TrainingStartTime") is not None:
        run.started_at = utc(job["TrainingStartTime"])
    if job.get("TrainingEndTime") is not None:
        run.ended_at = utc(job["TrainingEndTime"])
    training = job.get("TrainingTimeInSeconds")
    billable = job.get("BillableTimeInSeconds")
    run.training_seconds = float(training) if isinstance(training, int | float) else run.training_seconds
    if isinstance(billable, int | float):
        run.billable_seconds = float(billable)
        if run.spot and run.training_seconds:
            run.spot_saving_pct = round((1 - run.billable_seconds / run.training_seconds) * 100, 1)
        run.cost_usd = training_prices().for_seconds(run.instance_type, run.billable_seconds, run.instance_count)
        if run.cost_usd is not None:
            run.extra["price_label"] = training_prices().label
