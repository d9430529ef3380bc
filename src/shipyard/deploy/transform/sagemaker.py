"""The ``sagemaker`` target of a transform job: CreateTransformJob on the model of a deployment, an existing
SageMaker model, or one made for a bundle (its model.tar.gz uploaded, with the image and role given), named
after the bundle's content and reused by the next transform of it; a multi-model deployment or model is refused;
a local input uploaded first, the job waited for with DescribeTransformJob, a local output downloaded after.

The job's MaxConcurrentTransforms, BatchStrategy and MaxPayloadInMB are sent only when given: otherwise
SageMaker asks the container's ``/execution-parameters`` itself, as the local target does."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.bundle.archive import is_archive, pack
from shipyard.deploy.base import Reporter, SilentReporter
from shipyard.deploy.images import is_bundle_source
from shipyard.deploy.state import StateStore
from shipyard.deploy.transform.cost import CostEstimate, estimate
from shipyard.deploy.transform.options import TransformOptions
from shipyard.errors import DeployFailed, SpecError
from shipyard.settings import Settings

if TYPE_CHECKING:
    from shipyard.cloud.session import Aws

__all__ = ["JobResult", "job_request", "run_sagemaker"]

PREFIX = "shipyard-transform"
ENDED = ("Completed", "Failed", "Stopped")


@dataclass
class JobResult:
    job_name: str
    job_arn: str
    model_name: str
    input_uri: str
    output_uri: str
    status: str
    failure: str | None = None
    seconds: float | None = None
    downloaded: list[str] = field(default_factory=list)
    cost: CostEstimate | None = None
    request: dict[str, Any] = field(default_factory=dict)


def job_request(
    options: TransformOptions, *, job_name: str, model_name: str, input_uri: str, output_uri: str
) -> dict[str, Any]:
    """CreateTransformJob's request for ``options``, field by field."""
    content_type = options.media_type or "application/json"
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": options.split_type,
        },
        "TransformOutput": {
            "S3OutputPath": output_uri,
            "Accept": options.answer_type,
            "AssembleWith": options.assemble_with,
        },
        "TransformResources": {"InstanceType": options.instance_type, "InstanceCount": options.instance_count},
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": int(options.timeout_s),
            "InvocationsMaxRetries": options.max_retries,
        },
        "Tags": [{"Key": k, "Value": v} for k, v in sorted({"shipyard:transform": job_name, **options.tags}.items())],
    }
    if options.max_concurrent is not None:
        request["MaxConcurrentTransforms"] = options.max_concurrent
    if options.max_payload_mb is not None:
        request["MaxPayloadInMB"] = options.max_payload_mb
    if options.strategy is not None:
        request["BatchStrategy"] = options.strategy
    if options.environment:
        request["Environment"] = dict(options.environment)
    processing: dict[str, str] = {}
    if options.input_filter:
        processing["InputFilter"] = options.input_filter
    if options.output_filter:
        processing["OutputFilter"] = options.output_filter
    if options.join_source != "None":
        processing["JoinSource"] = options.join_source
    if processing:
        request["DataProcessing"] = processing
    return request


def run_sagemaker(
    options: TransformOptions,
    *,
    aws: Aws | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
    poll_s: float = 10.0,
    on_poll: Callable[[str, float], None] | None = None,
    wait: bool = True,
) -> JobResult:
    from shipyard.cloud.s3 import S3Gateway, default_bucket, parse_s3_uri
    from shipyard.cloud.session import Aws, tag_list
    from shipyard.cloud.transform import TransformGateway

    told = reporter or SilentReporter()
    settings = settings or Settings.from_env()
    aws = aws or Aws(region=options.region)
    s3, jobs = S3Gateway(aws), TransformGateway(aws)
    model = _model_for(options, aws, settings, told)
    job_name = options.job_name or _job_name(model)
    bucket = default_bucket(aws.region, aws.account)
    tags = {"shipyard:transform": job_name, **options.tags}
    staged = f"s3://{bucket}/{PREFIX}/{job_name}"
    input_uri = options.input
    if not input_uri.startswith("s3://"):
        if not s3.bucket_exists(bucket):
            s3.create_bucket(bucket)
        synced = s3.sync_up(Path(options.input), f"{staged}/input/", tags=tags)
        input_uri = synced.uri
        told.step(f"uploaded {synced.uploaded} file(s), {synced.bytes_sent} bytes, to {input_uri}")
    output_uri = options.output if options.output.startswith("s3://") else f"{staged}/output/"
    request = job_request(options, job_name=job_name, model_name=model, input_uri=input_uri, output_uri=output_uri)
    request["Tags"] = tag_list(dict(sorted(tags.items())))
    arn = jobs.create(request)
    told.step(f"transform job {job_name} on {options.instance_count} × {options.instance_type}")
    result = JobResult(job_name, arn, model, input_uri, output_uri, "InProgress", request=request)
    result.cost = estimate(options.instance_type, options.instance_count)
    if not wait:
        return result
    started = time.monotonic()
    try:
        while True:
            described = jobs.describe(job_name) or {}
            status = str(described.get("TransformJobStatus", "InProgress"))
            elapsed = time.monotonic() - started
            told.status(status, elapsed)
            if on_poll is not None:
                on_poll(status, elapsed)
            if status in ENDED:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:  # an interrupted wait stops the job: nothing bills on unseen
        jobs.stop(job_name)
        told.step(f"stopped the transform job {job_name}")
        raise
    result.status, result.failure = status, described.get("FailureReason")
    result.seconds = _job_seconds(described)
    result.cost = estimate(options.instance_type, options.instance_count, result.seconds)
    if status != "Completed":
        raise DeployFailed(f"the transform job {job_name} ended {status}: {result.failure or 'no reason given'}")
    if not options.output.startswith("s3://"):
        out_bucket, out_prefix = parse_s3_uri(output_uri)
        written = jobs.download(out_bucket, out_prefix, Path(options.output))
        result.downloaded = [str(p) for p in written]
        told.step(f"downloaded {len(written)} output file(s) to {options.output}")
    return result


def _model_for(options: TransformOptions, aws: Aws, settings: Settings, reporter: Reporter) -> str:
    """The ModelName: a sagemaker deployment's model, an existing SageMaker model, or one made for a bundle."""
    from shipyard.cloud.sagemaker import SageMakerGateway

    source = options.source
    record = StateStore(settings=settings).get(source)
    if record is not None:
        if record.options is not None and record.options.multi_model:
            raise SpecError(
                f"source {source} is a multi-model deployment (Mode: MultiModel): batch transform runs one model "
                "and cannot run a multi-model one. Give the model's bundle or archive as the source, with --image "
                "and --role-arn",
                option="source",
            )
        if record.target != "sagemaker" or not record.details.model:
            raise SpecError(f"source {source} is a {record.target} deployment with no SageMaker model", option="target")
        return record.details.model
    gateway = SageMakerGateway(aws)
    if is_bundle_source(source):
        if not options.image or not options.role_arn:
            raise SpecError(
                f"source {source} is a bundle: a transform job on sagemaker needs --image (an ECR image URI) and "
                f"--role-arn to make its model, or `shipyard deploy {source} --target sagemaker` first and "
                "the deployment's name as the source",
                option="image",
            )
        return _bundle_model(options, aws, gateway, reporter)
    described = gateway.describe_model(source)
    if described is None:
        raise SpecError(f"source {source}: no deployment, bundle or SageMaker model of that name", option="source")
    if described.get("PrimaryContainer", {}).get("Mode") == "MultiModel":
        raise SpecError(
            f"source {source} is a multi-model SageMaker model (Mode: MultiModel): batch transform cannot run it",
            option="source",
        )
    return source


def _bundle_model(options: TransformOptions, aws: Aws, gateway: Any, reporter: Reporter) -> str:
    """The SageMaker model of a bundle: named after its content (the reproducible archive's sha256, with the
    image, role and environment it runs with), so every transform of the same bundle reuses one model and one
    ``model.tar.gz`` instead of leaving a new pair behind each time."""
    from shipyard.cloud.s3 import S3Gateway, default_bucket
    from shipyard.cloud.session import tag_list

    with tempfile.TemporaryDirectory(prefix="shipyard-transform-") as tmp:
        source = Path(options.source)
        archive = source if is_archive(source) else pack(source, Path(tmp) / "model.tar.gz")
        name = _model_name(source, archive, options)
        if gateway.describe_model(name) is not None:
            reporter.step(f"model {name} (made by an earlier transform of the same bundle)")
            return name
        s3 = S3Gateway(aws)
        bucket = default_bucket(aws.region, aws.account)
        if not s3.bucket_exists(bucket):
            s3.create_bucket(bucket)
        tags = {"shipyard:transform": name}
        url = s3.upload(archive, bucket, f"{PREFIX}/{name}/model.tar.gz", tags=tags)
    gateway.create_model(
        name,
        image=options.image or "",
        role_arn=options.role_arn or "",
        model_data_url=url,
        environment=dict(options.environment),
        tags=tag_list(tags),
    )
    reporter.step(f"model {name} ({url})")
    return name


def _model_name(source: Path, archive: Path, options: TransformOptions) -> str:
    """``<bundle>-<16 hex digits>``: the archive's sha256 and what the model is made with besides."""
    digest = hashlib.sha256()
    with archive.open("rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    made_with = json.dumps([options.image, options.role_arn, sorted(options.environment.items())])
    key = hashlib.sha256(f"{digest.hexdigest()}\0{made_with}".encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() else "-" for c in source.name.split(".")[0]).strip("-")
    return f"{stem[: 62 - len(key) - 1].strip('-') or 'model'}-{key}"


def _job_name(base: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    clean = "".join(c if c.isalnum() else "-" for c in base).strip("-")[: 62 - len(stamp) - 1] or "transform"
    return f"{clean}-{stamp}"


def _job_seconds(described: dict[str, Any]) -> float | None:
    begin, end = described.get("TransformStartTime"), described.get("TransformEndTime")
    if isinstance(begin, datetime) and isinstance(end, datetime):
        return max(0.0, (end - begin).total_seconds())
    return None
