"""What the ``local`` target does for ``deploy --async``: start the queue beside the container (after it is
InService), restart it on an update that changes its settings (stop it when the update is not async), tell when it
is gone, stop it and delete its directory on cleanup.

The record holds two resources: ``async-queue`` (``PID@PORT``) and ``async-bucket`` (the directory's path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shipyard.deploy.base import CleanupReport, Reporter, Save
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.queue.channel import LocalAsyncChannel, bucket_dir
from shipyard.deploy.queue.process import is_queue, queue_command, running_command, start_queue, stop_queue
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError, SpecError

__all__ = ["QUEUE", "QUEUE_BUCKET", "QUEUE_DOWN", "channel", "check", "ensure", "queue_alive", "remove"]

QUEUE = "async-queue"
QUEUE_BUCKET = "async-bucket"
QUEUE_DOWN = "the async queue"  # how refresh's failure for a dead queue begins
DEFAULT_CONCURRENCY = 4


def check(spec: DeployOptions) -> None:
    """S3 locations on the local target: only with ``AWS_ENDPOINT_URL`` (a stand-in such as moto), and the
    output's given first (the failures' and the inputs' are put beside it)."""
    settings = spec.asynchronous
    if settings is None:
        return
    given = [(o, u) for o, u in (("async_output", settings.output_path), ("async_failure", settings.failure_path)) if u]
    if not given:
        return
    option, uri = given[0]
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise SpecError(
            f"{option} {uri}: the local target writes answers and errors to the deployment's directory; S3 "
            "locations need AWS_ENDPOINT_URL (a stand-in such as moto) here, or --target sagemaker",
            option=option,
        )
    if settings.output_path is None:
        raise SpecError("async_failure needs --async-output on the local target", option="async_failure")


def _prefixes(spec: DeployOptions, name: str) -> tuple[str | None, str | None, str | None]:
    """(input, output, failure) prefixes for S3 locations; all None for the directory bucket."""
    settings = spec.asynchronous
    if settings is None or settings.output_path is None:
        return None, None, None
    bucket = settings.output_path.removeprefix("s3://").partition("/")[0]
    return f"s3://{bucket}/async/{name}/input", settings.output_path, settings.failure_path or settings.output_path


def _queue(record: Deployment) -> tuple[int, int] | None:
    found = record.one(QUEUE)
    if found is None:
        return None
    pid, _, port = found.partition("@")
    return int(pid), int(port)


def queue_alive(record: Deployment) -> bool:
    found = _queue(record)
    return found is not None and is_queue(*found)


def ensure(record: Deployment, spec: DeployOptions, staging_root: Path, save: Save, reporter: Reporter) -> None:
    """The queue of an async deployment running in front of its container with ``spec``'s settings: started,
    restarted on its port when it is gone or its settings differ (``deploy --update --max-concurrent ...``), or
    stopped and dropped from the record when ``spec`` is not async (its directory stays until cleanup)."""
    settings = spec.asynchronous
    found = _queue(record)
    if settings is None:
        if found is not None:
            stopped = stop_queue(*found)
            record.drop(QUEUE, f"{found[0]}@{found[1]}")
            save(record)
            if stopped:
                reporter.step(f"stopped the async queue (pid {found[0]}): the deployment is real-time now")
        return
    if not record.url:
        return
    bucket = bucket_dir(staging_root, record.name)
    _, output, failure = _prefixes(spec, record.name)
    wanted: dict[str, Any] = {
        "concurrency": settings.max_concurrent or spec.workers or DEFAULT_CONCURRENCY,
        "timeout_s": settings.invocation_timeout_s,
        "notify_success": settings.success_topic is not None,
        "notify_error": settings.error_topic is not None,
        "output": output,
        "failure": failure,
    }
    if found is not None:
        running = running_command(found[0])
        if running is not None and is_queue(*found):
            if running[1:] == queue_command(record.name, record.url, bucket, found[1], **wanted)[1:]:
                return
            stop_queue(*found)  # its running requests finish (or fail); the waiting ones are taken up again
            reporter.step(f"stopped the async queue (pid {found[0]}): its settings changed")
        record.drop(QUEUE, f"{found[0]}@{found[1]}")
    queue = start_queue(
        record.name,
        record.url,
        bucket,
        log_path=staging_root / f"async-{record.name}.log",
        port=found[1] if found is not None else None,
        **wanted,
    )
    record.add(QUEUE_BUCKET, str(bucket))
    record.add(QUEUE, f"{queue.pid}@{queue.port}")
    save(record)
    reporter.step(f"async queue (pid {queue.pid}) on {queue.url}, bucket {bucket}")


def channel(record: Deployment) -> LocalAsyncChannel:
    found, bucket = _queue(record), record.one(QUEUE_BUCKET)
    if found is None or bucket is None:
        raise DeployError(
            f"{record.name} is a real-time deployment: invoke it without --async, or deploy one with --async"
        )
    options = record.options
    inputs = _prefixes(options, record.name)[0] if options is not None else None
    timeout_s = options.asynchronous.invocation_timeout_s if options and options.asynchronous else None
    return LocalAsyncChannel(
        record.name, Path(bucket), f"http://127.0.0.1:{found[1]}", input_prefix=inputs, timeout_s=timeout_s
    )


def remove(record: Deployment, save: Save, reporter: Reporter, report: CleanupReport, *, keep: bool) -> None:
    """Stop the queue; delete its directory (inputs, answers, errors) unless ``keep``."""
    for resource in list(record.of(QUEUE)):
        pid, _, port = resource.id.partition("@")
        stopped = stop_queue(int(pid), int(port))
        record.drop(QUEUE, resource.id)
        save(record)
        (report.deleted if stopped else report.already_gone).append(f"async queue {pid}")
        if stopped:
            reporter.step(f"stopped the async queue (pid {pid})")
    for resource in list(record.of(QUEUE_BUCKET)):
        if keep:
            report.kept.append(f"async directory {resource.id} (inputs, answers, errors)")
            continue
        existed = Path(resource.id).is_dir()
        shutil.rmtree(resource.id, ignore_errors=True)
        record.drop(QUEUE_BUCKET, resource.id)
        save(record)
        (report.deleted if existed else report.already_gone).append(f"async directory {resource.id}")
