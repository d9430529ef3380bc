"""The ``local`` target of a transform job: the real image in a container, started for the job and removed after
(a bundle source: its image built as ``shipyard deploy`` builds it), or a running local deployment or server
(a deployment's name, or a URL), left running. SageMaker's side is :mod:`~shipyard.deploy.transform.engine`."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from shipyard.bundle.archive import extract_archive, make_readable, pack
from shipyard.client.records import output_name
from shipyard.client.transport import HTTPTransport
from shipyard.deploy.base import Reporter, SilentReporter
from shipyard.deploy.images import ImageService, is_bundle_source
from shipyard.deploy.state import StateStore
from shipyard.deploy.transform.engine import Progress, TransformResult, execution_parameters, settings_for
from shipyard.deploy.transform.engine import transform_files as run_files
from shipyard.deploy.transform.options import TransformOptions
from shipyard.errors import DeployFailed, NotDeployed, SpecError
from shipyard.settings import Settings

__all__ = ["run_local", "serving_url"]


def run_local(
    options: TransformOptions,
    *,
    settings: Settings | None = None,
    images: ImageService | None = None,
    engine: str | None = None,
    reporter: Reporter | None = None,
    progress: Progress | None = None,
) -> TransformResult:
    """Transform ``options.input`` into ``options.output`` with the model of ``options.source``."""
    told = reporter or SilentReporter()
    with _staged(options, told) as (local, upload):
        with serving_url(local, settings=settings, images=images, engine=engine, reporter=told) as url:
            settings_ = settings_for(local, execution_parameters(url))
            told.step(
                f"{settings_.strategy}, up to {settings_.max_payload_mb} MB a request, "
                f"{settings_.max_concurrent} at a time"
            )
            transport = HTTPTransport(url, max_connections=settings_.max_concurrent)
            try:
                result = run_files(transport, local, settings_, Path(local.output), progress=progress)
            finally:
                transport.close()
        upload(result)
        return result


@contextlib.contextmanager
def _staged(
    options: TransformOptions, reporter: Reporter
) -> Iterator[tuple[TransformOptions, Callable[[TransformResult], None]]]:
    """The options with an ``s3://`` input downloaded and an ``s3://`` output staged in a temporary directory,
    uploaded after (what was written: a failed file has no output there either, an earlier run's object of it
    deleted); local paths as they are."""
    if not options.input.startswith("s3://") and not options.output.startswith("s3://"):
        yield options, lambda _: None
        return
    from shipyard.cloud.s3 import S3Gateway, parse_s3_uri
    from shipyard.cloud.session import Aws
    from shipyard.cloud.transform import TransformGateway

    aws = Aws(region=options.region)
    with tempfile.TemporaryDirectory(prefix="shipyard-transform-s3-") as tmp:
        local_in, local_out = options.input, options.output
        if options.input.startswith("s3://"):
            bucket, prefix = parse_s3_uri(options.input)
            local_in = str(Path(tmp) / "input")
            got = TransformGateway(aws).download(bucket, prefix, Path(local_in))
            reporter.step(f"downloaded {len(got)} input object(s) from {options.input}")
        if options.output.startswith("s3://"):
            local_out = str(Path(tmp) / "output")

        def upload(result: TransformResult) -> None:
            if local_out == options.output:
                return
            if Path(local_out).is_dir():
                synced = S3Gateway(aws).sync_up(Path(local_out), options.output, tags={})
                reporter.step(f"uploaded {synced.uploaded} output file(s) to {synced.uri}")
            if result.failed:  # an earlier run's output of a file that failed now is no answer of this run
                bucket, prefix = parse_s3_uri(options.output)
                if prefix and not prefix.endswith("/"):
                    prefix += "/"
                stale = [prefix + output_name(f.input) for f in result.failed]
                TransformGateway(aws).remove(bucket, stale)
                reporter.step(f"removed any earlier output of the {len(stale)} failed file(s) from {options.output}")

        yield dataclasses.replace(options, input=local_in, output=local_out), upload


@contextlib.contextmanager
def serving_url(
    options: TransformOptions,
    *,
    settings: Settings | None = None,
    images: ImageService | None = None,
    engine: str | None = None,
    reporter: Reporter,
) -> Iterator[str]:
    """The URL of a server of the source's model, for the length of the job."""
    source = options.source
    if source.startswith(("http://", "https://")):
        yield source
        return
    if is_bundle_source(source) or options.image:
        with _container(options, settings=settings, images=images, engine=engine, reporter=reporter) as url:
            yield url
        return
    record = StateStore(settings=settings or Settings.from_env()).get(source)
    if record is None:
        raise NotDeployed(f"{source} is no bundle, archive or URL, and no deployment of that name")
    if record.options is not None and record.options.multi_model:
        raise SpecError(
            f"{source} is a multi-model deployment: a transform job runs one model, and each request to "
            f"{source} must name its model (TargetModel). Give the model's bundle or archive as the source instead",
            option="source",
        )
    if record.target != "local" or not record.url:
        raise SpecError(
            f"{source} is a {record.target} deployment: transform it with --target sagemaker", option="target"
        )
    yield record.url


@contextlib.contextmanager
def _container(
    options: TransformOptions,
    *,
    settings: Settings | None,
    images: ImageService | None,
    engine: str | None,
    reporter: Reporter,
) -> Iterator[str]:
    from shipyard.deploy.engine_images import EngineImages
    from shipyard.image import detect
    from shipyard.image.run import ContainerRun

    service = images or EngineImages(engine, settings=settings)
    # the image is named after the bundle, so the next transform of it finds it built; the container is the job's
    stem = "".join(c if c.isalnum() else "-" for c in Path(options.source).name.split(".")[0].lower()).strip("-")
    resolved = service.resolve(
        options.source,
        name=f"transform-{stem or 'model'}",
        bake_model=False,
        image=options.image,
        base=options.base_image,
        reporter=reporter,
    )
    name = f"transform-{uuid.uuid4().hex[:8]}"
    env = dict(options.environment)
    if options.workers:
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(options.workers)
    with tempfile.TemporaryDirectory(prefix="shipyard-transform-") as tmp:
        mounts = {}
        if resolved.bundle is not None:
            mounts[str(_model_dir(resolved.bundle, Path(tmp)))] = "/opt/ml/model"
        run = ContainerRun(detect(engine, settings), resolved.image, name=f"shipyard-{name}", mounts=mounts, env=env)
        started = time.monotonic()
        run.start()
        try:
            reporter.step(f"container {run.name} ({resolved.image}) on {run.url}")
            ping = run.wait_ready(
                options.startup_timeout_s,
                started=started,
                on_wait=lambda elapsed: reporter.status("Creating", elapsed),
            )
            if ping.seconds is None:
                tail = tuple(run.logs(tail=30).splitlines())
                raise DeployFailed(
                    f"the transform's container did not answer /ping within {options.startup_timeout_s:g} s "
                    f"({ping.last})",
                    reason=ping.last,
                    log_tail=tail,
                )
            reporter.status("InService", ping.seconds)
            yield run.url
        finally:
            run.remove()
            reporter.step(f"removed the container {run.name}")


def _model_dir(bundle: Path, tmp: Path) -> Path:
    """What SageMaker mounts at /opt/ml/model: the bundle directory, or the archive extracted (readable to all:
    the server's workers run unprivileged)."""
    if bundle.is_dir() and _world_readable(bundle):
        return bundle.resolve()
    target = tmp / "model"
    target.mkdir(mode=0o755)
    tmp.chmod(0o755)  # the mount's parent: reachable by the container's unprivileged user too
    archive = bundle if bundle.is_file() else pack(bundle, tmp / "model.tar.gz")
    extract_archive(archive, target)  # every member checked first (bundle/untrusted.py)
    make_readable(target)
    return target


def _world_readable(root: Path) -> bool:
    """Whether every file under ``root`` is readable by others, and every directory reachable (as the local
    target checks before it mounts a bundle as it is)."""
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        if (mode & 0o005) != 0o005 if path.is_dir() else not mode & 0o004:
            return False
    return True
