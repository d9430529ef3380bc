"""The local target: one training container under Podman or Docker, with SageMaker's mounts.

The run's folder (``RunStore.folder(NAME)``) holds what the container sees and writes::

    opt_ml/input/config/*.json      the contract's files (mounted read-only at /opt/ml/input/config)
    opt_ml/model/                   /opt/ml/model (read-write)
    opt_ml/output/{data,failure}    /opt/ml/output (read-write)
    opt_ml/checkpoints/             /opt/ml/checkpoints, unless --checkpoints names a host folder (kept, reused)
    train.log                       every line of the container's log
    model.tar.gz, output.tar.gz     /opt/ml/model and /opt/ml/output/data, packed as SageMaker packs them
    bundle/                         the Shipyard bundle (the script's shipyard.save, or the artifacts + --handler)

Channel data is mounted read-only at ``/opt/ml/input/data/<channel>``, never copied (a file channel is mounted
as a file inside that folder). The log is streamed to ``ctx.emit("log", ...)`` and its metrics to ``ctx.metric``
as the lines arrive. Ctrl-C stops the container (SIGTERM, then SIGKILL) and records ``Stopped``; a non-zero exit
or a failure file records ``Failed`` with the reason and the log's tail; ``max_runtime`` stops the container and
records ``Failed`` with SageMaker's ``MaxRuntimeExceeded`` reason.
"""

from __future__ import annotations

import shutil
import tarfile
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipyard.bundle import Bundle
from shipyard.bundle.archive import make_readable
from shipyard.bundle.manifest import MANIFEST
from shipyard.errors import BundleError, TrainError, TrainFailed, TrainStopped
from shipyard.experiments.record import TrainRun
from shipyard.image.engine import Engine, detect
from shipyard.train.api import TrainContext
from shipyard.train.options import TrainOptions
from shipyard.training.contract import CURRENT_HOST, Paths, write_config
from shipyard.training.entry import SECONDS_LINE
from shipyard.training.metrics import MetricParser

__all__ = ["LABEL", "STOP_GRACE_S", "container_name", "run_local"]

LABEL = "dev.shipyard.train.run"  # every training container carries its run's name (cleanup finds them by it)
STOP_GRACE_S = 10  # SIGTERM, then SIGKILL this many seconds later
TAIL_LINES = 40
CONTAINER_ROOT = "/opt/ml"


def container_name(run: str) -> str:
    return f"shipyard-train-{run}"


@dataclass
class _Watch:
    """What reading the log found, and whether the stopping condition ended the run."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    timed_out: threading.Event = field(default_factory=threading.Event)


def run_local(
    options: TrainOptions, run: TrainRun, ctx: TrainContext, image: str, engine: Engine | None = None
) -> TrainRun:
    """Run ``image train`` for ``run``; the completed run (a Failed or Stopped one raises, after it is saved)."""
    engine = engine or detect(None, ctx.settings)
    folder = ctx.store.folder(run.name)
    paths = Paths(folder / "opt_ml")
    for stale in (paths.model_dir, paths.output_dir):
        shutil.rmtree(stale, ignore_errors=True)
    write_config(
        paths,
        hyperparameters=options.hyperparameters,
        channels={c.name: c.content_type for c in run.channels},
        instance_type=options.instance_type,
    )
    checkpoints = _checkpoints(options, paths)
    run.checkpoints = str(checkpoints)
    command = _options(run, paths, checkpoints, options)
    ctx.phase(f"starting {image} train ({engine.name})")
    container = engine.run_detached(image, ["train"], command)
    run.started_at = datetime.now(UTC).replace(microsecond=0)
    ctx.store.save(run)
    watch = _Watch()
    try:
        status = _follow(engine, container, run, ctx, options, watch, folder / "train.log")
    except KeyboardInterrupt:
        ctx.phase("stopping the training container (Ctrl-C)")
        engine.stop(container, STOP_GRACE_S)
        engine.remove_container(container)
        _ended(run, watch)
        ctx.status(run, "Stopped")
        raise TrainStopped(f"training run {run.name} was stopped (Ctrl-C); the container is removed") from None
    except BaseException:
        engine.remove_container(container)
        raise
    removal = threading.Thread(target=engine.remove_container, args=(container,), daemon=True)
    removal.start()  # the engine removes the exited container while the model is packed
    try:
        _ended(run, watch)
        _judge(run, ctx, paths, status, watch, options)
        _package(run, ctx, folder, paths, options)
    finally:
        removal.join()
    ctx.status(run, "Completed")
    return run


def _checkpoints(options: TrainOptions, paths: Paths) -> Path:
    """The host folder at /opt/ml/checkpoints: --checkpoints (kept between runs) or the run's own."""
    if options.checkpoints and not options.checkpoints.startswith("s3://"):
        folder = Path(options.checkpoints).expanduser().resolve()
    else:
        folder = paths.checkpoints_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _options(run: TrainRun, paths: Paths, checkpoints: Path, options: TrainOptions) -> list[str]:
    """The engine's ``run`` options: name, labels, hostname, environment and the contract's mounts."""
    args = ["--name", container_name(run.name), "--hostname", CURRENT_HOST, "--label", f"{LABEL}={run.name}"]
    args += ["--env", f"TRAINING_JOB_NAME={run.name}"]
    for key, value in options.env.items():
        args += ["--env", f"{key}={value}"]
    volumes = [
        (paths.config_dir, f"{CONTAINER_ROOT}/input/config", "ro"),
        (paths.model_dir, f"{CONTAINER_ROOT}/model", "rw"),
        (paths.output_dir, f"{CONTAINER_ROOT}/output", "rw"),
        (checkpoints, f"{CONTAINER_ROOT}/checkpoints", "rw"),
    ]
    for channel in run.channels:
        source = Path(channel.uri)
        target = f"{CONTAINER_ROOT}/input/data/{channel.name}"
        if channel.uri.startswith("s3://"):
            raise TrainError(
                f"channel {channel.name}: the local target reads local data; download {channel.uri} first or use "
                "--target sagemaker"
            )
        volumes.append((source, f"{target}/{source.name}" if source.is_file() else target, "ro"))
    for source, target, mode in volumes:
        args += ["--volume", f"{source}:{target}:{mode}"]
    return args


def _follow(
    engine: Engine,
    container: str,
    run: TrainRun,
    ctx: TrainContext,
    options: TrainOptions,
    watch: _Watch,
    log_path: Path,
) -> int | None:
    """Stream the log (to the listener, the parser and train.log) until the container stops; its exit status."""
    parser = MetricParser(options.metric_definitions)

    def expire() -> None:
        watch.timed_out.set()
        engine.stop(container, STOP_GRACE_S)

    timer = threading.Timer(options.max_runtime_s, expire)
    timer.daemon = True
    timer.start()
    try:
        with log_path.open("a", encoding="utf-8") as log:
            for line in engine.follow_logs(container, tail=None):
                log.write(line + "\n")
                log.flush()
                watch.tail.append(line)
                if line.startswith(SECONDS_LINE):
                    run.training_seconds = float(line[len(SECONDS_LINE) :].split()[0])
                ctx.emit("log", line)
                for point in parser.feed(line):
                    ctx.metric(run, point)
        return engine.wait(container)
    finally:
        timer.cancel()


def _ended(run: TrainRun, watch: _Watch) -> None:
    run.ended_at = datetime.now(UTC).replace(microsecond=0)
    run.log_tail = list(watch.tail)


def _judge(
    run: TrainRun, ctx: TrainContext, paths: Paths, status: int | None, watch: _Watch, options: TrainOptions
) -> None:
    """Failed (saved, then raised) on the stopping condition, a failure file or a non-zero exit."""
    failure = paths.failure_file.read_text(errors="replace").strip() if paths.failure_file.is_file() else ""
    if watch.timed_out.is_set():
        reason = f"MaxRuntimeExceeded: Training job exceeded MaxRuntimeInSeconds ({options.max_runtime_s} s)"
    elif failure:
        reason = failure
    elif status != 0:
        reason = f"AlgorithmError: the training container exited with status {status}"
    else:
        return
    run.failure_reason = reason
    ctx.status(run, "Failed")
    raise TrainFailed(f"training run {run.name} failed: {reason}", reason=reason, log_tail=tuple(run.log_tail))


def _package(run: TrainRun, ctx: TrainContext, folder: Path, paths: Paths, options: TrainOptions) -> None:
    """model.tar.gz and output.tar.gz, and the bundle: the script's own, or the artifacts with --handler."""
    ctx.phase("packing model.tar.gz")
    run.model_artifact = str(pack_folder(paths.model_dir, folder / "model.tar.gz"))
    if paths.output_data_dir.is_dir() and any(paths.output_data_dir.iterdir()):
        run.output_data = str(pack_folder(paths.output_data_dir, folder / "output.tar.gz"))
    bundle = folder / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    if (paths.model_dir / MANIFEST).is_file():
        shutil.copytree(paths.model_dir, bundle, symlinks=True)
        run.is_bundle = True
    elif options.handler is not None:
        wrap_with_handler(paths.model_dir, options.handler, bundle)
    else:
        run.extra["note"] = (
            "the model folder holds no Shipyard bundle (shipyard.save) and no --handler was given: "
            "the artifact needs --handler inference.py to deploy"
        )
        return
    make_readable(bundle)
    Bundle.open(bundle)  # a bundle that is recorded is one that opens
    run.bundle_path = str(bundle)


def wrap_with_handler(model_dir: Path, handler: Path, bundle: Path) -> None:
    """A bundle of the artifacts in ``model_dir`` and the SageMaker handler script ``handler`` (as
    ``code/inference.py``, with a ``requirements.txt`` beside it): the toolkit's layout, which
    :meth:`Bundle.open` reads."""
    shutil.copytree(model_dir, bundle, symlinks=True)
    code = bundle / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(handler, code / "inference.py")
    requirements = handler.parent / "requirements.txt"
    if requirements.is_file():
        shutil.copyfile(requirements, code / "requirements.txt")
    try:
        Bundle.open(bundle)
    except BundleError as exc:
        raise TrainError(f"the model could not be wrapped with {handler}: {exc}") from None


def pack_folder(source: Path, archive: Path) -> Path:
    """``source``'s files as a tar.gz whose members are relative to it (as SageMaker packs /opt/ml/model)."""
    tmp = archive.with_name(f".{archive.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    tmp.replace(archive)
    return archive
