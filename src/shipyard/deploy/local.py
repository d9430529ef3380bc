"""The ``local`` target: the real image under Podman or Docker, hosted the way SageMaker hosts it.

``IMAGE serve`` with the bundle mounted read-only at ``/opt/ml/model``, port 8080 published on 127.0.0.1,
``/ping`` polled with a live status line (Creating → InService) for up to ``--startup-timeout`` seconds
(SageMaker's ContainerStartupHealthCheckTimeoutInSeconds); a container that exits or never answers ends
``Failed`` with its last log lines and the likely cause. The engine is the truth afterwards: ``refresh``
reads the container's state, so a container gone after a reboot shows as gone.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from shipyard.bundle.archive import extract_archive, make_readable, pack
from shipyard.client.transport import HTTPTransport, Transport
from shipyard.deploy.asynchronous import AsyncChannel, async_environment
from shipyard.deploy.base import (
    CREATING,
    DELETED,
    FAILED,
    IN_SERVICE,
    CleanupReport,
    DeployRun,
    Health,
    Plan,
    Reporter,
    Save,
)
from shipyard.deploy.expose import ExposeOptions, Exposure, not_exposed
from shipyard.deploy.front import (
    FrontProcess,
    is_front,
    new_api_key,
    start_front,
    stop_front,
    write_key_file,
)
from shipyard.deploy.images import ImageService, ResolvedImage
from shipyard.deploy.metrics_health import health_from_metrics
from shipyard.deploy.multimodel import (
    MODELS_MOUNT,
    MULTI_MODEL_ENV,
    TARGET_MODEL_HEADER,
    archive_name,
    image_source,
    models_in,
)
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.queue import local as queue_steps
from shipyard.deploy.state import Deployment, now_utc
from shipyard.errors import DeployError, DeployFailed, SpecError
from shipyard.settings import Settings

if TYPE_CHECKING:
    from shipyard.image import Engine
    from shipyard.image.run import ContainerRun

__all__ = ["LABEL", "LocalTarget"]

LABEL = "dev.shipyard.deployment"
OUT_OF_SERVICE = "OutOfService"
MODEL_DIR = "model-dir"  # resource kind: a model.tar.gz extracted for the container to mount
FRONT = "front"  # resource kind: the front of an exposed deployment (id: its pid)
FRONT_DOWN = "the front"  # how refresh's failure for a dead front begins
KEY_FILE = "key-file"  # resource kind: the front's API key, in a file of mode 0600 (id: its path)


class LocalTarget:
    name = "local"

    def __init__(
        self,
        images: ImageService | None = None,
        *,
        engine: str | None = None,
        poll_s: float = 0.05,
        state_path: str | Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``state_path``: the state file of the deployments (a :class:`~shipyard.deploy.Deployer` passes its
        store's); an extracted ``model.tar.gz`` is staged beside it, in ``local/NAME/``. Default: the default
        state file's (``settings.state_path``: ``$SHIPYARD_STATE``, else ``~/.shipyard/state.json``)."""
        self._images = images
        self._engine_name = engine
        self.poll_s = poll_s
        self._state_path = Path(state_path).expanduser() if state_path is not None else None
        self._settings = settings

    @property
    def staging_root(self) -> Path:
        """Where model.tar.gz files are extracted for the containers: ``local/`` beside the state file."""
        return (self._state_path or (self._settings or Settings.from_env()).state_path).parent / "local"

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from shipyard.deploy.engine_images import EngineImages

            self._images = EngineImages(self._engine_name, settings=self._settings)
        return self._images

    @functools.cached_property
    def engine(self) -> Engine:
        from shipyard.image import detect

        return detect(self._engine_name, self._settings)

    # -- deploy ---------------------------------------------------------------------------------------------
    def plan(self, spec: DeployOptions) -> Plan:
        plan = Plan(spec.name, self.name, price_label="local: no cloud cost")
        if spec.multi_model:
            plan.add(
                "image", spec.image or f"built from a model of {spec.source}", f"its models at {MODELS_MOUNT}", 0.0
            )
        else:
            plan.add("image", spec.image or f"built from {spec.source}", "the model mounted at /opt/ml/model", 0.0)
        plan.add("container", f"shipyard-{spec.name}", f"127.0.0.1:{spec.port or 'a free port'} → 8080", 0.0)
        if spec.asynchronous is not None:
            concurrency = spec.asynchronous.max_concurrent or spec.workers or queue_steps.DEFAULT_CONCURRENCY
            plan.add(
                "async queue", f"async-{spec.name}", f"127.0.0.1, {concurrency} at a time, a directory bucket", 0.0
            )
        return plan

    def deploy(self, run: DeployRun) -> Deployment:
        spec = run.options
        if spec.serverless or spec.autoscale or spec.data_capture_pct or spec.role_arn:
            raise SpecError(
                "serverless, autoscale, data_capture_pct and role_arn apply to the sagemaker target", option="target"
            )
        queue_steps.check(spec)
        source = image_source(spec.source, spec.image) if spec.multi_model else spec.source
        resolved = self.images.resolve(
            source, name=spec.name, bake_model=False, image=spec.image, base=spec.base_image, reporter=run.reporter
        )
        self._start(spec, run.record, run.saver, run.reporter, resolved, version=1)
        queue_steps.ensure(run.record, spec, self.staging_root, run.saver, run.reporter)  # --async: its queue
        return run.record

    def _model_dir(
        self, spec: DeployOptions, resolved: ResolvedImage, version: int, previous: str | None = None
    ) -> tuple[Path | None, bool]:
        """The directory mounted at /opt/ml/model, and whether it was staged (and so is cleanup's to delete):
        the bundle itself, or a model.tar.gz extracted once per version (a failed update's restarted old
        container keeps its own copy). ``previous``: the models directory of the version an update replaces."""
        if spec.multi_model:
            return self._models_dir(spec, version, previous), True
        if resolved.bundle is None:
            return None, False
        if resolved.bundle.is_dir() and _world_readable(resolved.bundle):
            return resolved.bundle.resolve(), False
        # What SageMaker does with model.tar.gz: extract it into a fresh directory everyone can read (the
        # server's workers run unprivileged, and a bundle written with mode 0700 would be unreadable to them).
        target = self.staging_root / spec.name / f"model-{version}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True, mode=0o755)
        with tempfile.TemporaryDirectory(prefix="shipyard-local-") as tmp:
            archive = resolved.bundle if resolved.bundle.is_file() else pack(resolved.bundle, Path(tmp) / "m.tar.gz")
            extract_archive(archive, target)  # every member checked first (bundle/untrusted.py)
        make_readable(target)
        return target, True

    def _models_dir(self, spec: DeployOptions, version: int, previous: str | None = None) -> Path:
        """A multi-model deployment's models, staged once per version where everyone can read them (the server's
        workers run unprivileged; ``shipyard pack`` writes archives only their owner reads), mounted at
        /opt/ml/models; ``shipyard models add`` writes into this copy, the one served.

        Each model is there as the TargetModel SageMaker knows it by (create.py uploads ``archive_name(model)``):
        a ``model.tar.gz`` as it is, a bundle directory packed as ``NAME.tar.gz``, so ``--target-model
        digits.tar.gz`` works on both targets (and ``digits`` on neither). ``previous`` (an update): the models
        directory served so far; the models added to it with ``models add`` are carried over (a model of the
        directory given wins over one of the same name there)."""
        target = self.staging_root / spec.name / f"models-{version}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True, mode=0o755)
        for model in models_in(spec.source):
            destination = target / archive_name(model)
            if model.is_dir():
                pack(model, destination)
            else:
                shutil.copyfile(model, destination)
        old = Path(previous) if previous else None
        if old is not None and old.is_dir() and old.resolve() != target.resolve():
            for entry in old.iterdir():
                if entry.is_file() and not entry.is_symlink() and not (target / entry.name).exists():
                    shutil.copyfile(entry, target / entry.name)
        target.chmod(0o755)
        make_readable(target)
        return target

    def _start(
        self,
        spec: DeployOptions,
        record: Deployment,
        save: Save,
        reporter: Reporter,
        resolved: ResolvedImage,
        *,
        version: int,
        previous: str | None = None,
    ) -> None:
        run = self._container(spec, record, resolved, version)
        model_dir, staged = self._model_dir(spec, resolved, version, previous)
        if staged:
            record.add(MODEL_DIR, str(model_dir))
            save(record)
        if model_dir is not None:
            run.mounts = {str(model_dir): MODELS_MOUNT if spec.multi_model else "/opt/ml/model"}
        started = time.monotonic()
        try:
            # Secrets are read on this machine with its credentials and handed over through the engine's
            # environment (``-e VAR`` names the variable only), so no value appears on a command line or in the state.
            run.secret_env = _read_secrets(spec, record.region) if spec.secrets else {}
            container_id = run.start()
        except BaseException:
            if staged:  # no container uses it: leave nothing behind
                _drop_model_dir(record, str(model_dir), save)
            raise
        self._record_started(spec, record, save, run, container_id, version, str(model_dir) if staged else None)
        reporter.step(f"container {run.name} ({resolved.image}) on {record.url}")
        try:
            self._wait(run, spec.startup_timeout_s, reporter, started)
        except DeployFailed as failure:
            run.remove()
            record.drop("container", run.name)
            if staged:
                _drop_model_dir(record, str(model_dir), save)
            record.failure = str(failure)
            record.touch(FAILED)
            save(record)
            raise
        record.touch(IN_SERVICE)
        save(record)

    def _container(
        self, spec: DeployOptions, record: Deployment, resolved: ResolvedImage, version: int
    ) -> ContainerRun:
        """The container of this version (not started): ``shipyard-NAME-VERSION``, on the deployment's port."""
        from shipyard.image.run import ContainerRun

        name = f"shipyard-{spec.name}-{version}"
        if self.engine.container_state(name):
            raise SpecError(
                f"a container named {name} already exists: `shipyard cleanup {spec.name}` "
                f"or `{self.engine.name} rm -f {name}`"
            )
        env = {"SAGEMAKER_MODEL_SERVER_WORKERS": str(spec.workers)} if spec.workers else {}
        if spec.multi_model:
            env.update(MULTI_MODEL_ENV)
        return ContainerRun(
            self.engine,
            resolved.image,
            name=name,
            port=spec.port or record.details.port or None,  # None: a free one
            labels={LABEL: spec.name},
            env={**env, **async_environment(spec), **spec.env},
        )

    @staticmethod
    def _record_started(
        spec: DeployOptions,
        record: Deployment,
        save: Save,
        run: ContainerRun,
        container_id: str,
        version: int,
        model_dir: str | None,
    ) -> None:
        record.add("container", run.name)
        record.image, record.url = run.image, run.url
        details = record.details
        details.port, details.container, details.container_id = run.port, run.name, container_id[:12]
        details.version, details.model_dir = str(version), model_dir
        record.options, record.env_keys = spec, sorted(spec.env)
        record.instance_type, record.instance_count = None, 1
        record.touch(CREATING)
        save(record)

    def _wait(self, run: ContainerRun, timeout_s: float, reporter: Reporter, started: float) -> None:
        ping = run.wait_ready(
            timeout_s, started=started, interval=self.poll_s, on_wait=lambda elapsed: reporter.status(CREATING, elapsed)
        )
        if ping.seconds is not None:
            reporter.status(IN_SERVICE, ping.seconds)
            return
        state = run.state()
        if ping.exited:
            self._fail(run, f"the container exited with code {state.get('ExitCode')}", state)
        self._fail(run, f"/ping did not answer 200 within --startup-timeout {timeout_s:g} s", state)

    def _fail(self, run: ContainerRun, reason: str, state: dict[str, object]) -> NoReturn:
        tail = tuple(run.logs(tail=30).splitlines())
        raise DeployFailed(
            f"Failed: {reason}; likely cause: {_likely_cause(tail, state, reason)}",
            reason=reason,
            log_tail=tail,
        )

    def update(self, run: DeployRun) -> Deployment:
        """Stop the old container, start the new one on the same port; restart the old one if it fails."""
        spec, record, save, reporter = run.options, run.record, run.saver, run.reporter
        old = record.one("container")
        old_model_dir = record.details.model_dir
        old_options = record.options
        version = int(record.details.version or 1) + 1
        source = image_source(spec.source, spec.image) if spec.multi_model else spec.source  # as deploy() does
        resolved = self.images.resolve(
            source, name=spec.name, bake_model=False, image=spec.image, base=spec.base_image, reporter=reporter
        )
        if old:
            self.engine.stop(old, grace=10)
        try:
            self._start(spec, record, save, reporter, resolved, version=version, previous=old_model_dir)
        except DeployFailed as failure:
            if old:
                from shipyard.image.run import ContainerRun

                previous = ContainerRun.attach(self.engine, old, record.details.port or 0)
                previous.restart()
                record.details.container, record.details.model_dir = old, old_model_dir
                record.details.version = str(version - 1)
                record.options = old_options
                self._wait(previous, spec.startup_timeout_s, reporter, time.monotonic())  # serving again
                record.failure = None
                record.touch(IN_SERVICE)
                save(record)
            raise DeployFailed(
                f"{failure}; the previous version is back", reason=failure.reason, log_tail=failure.log_tail
            ) from None
        if old:
            self.engine.remove_container(old)
            record.drop("container", old)
            save(record)
        current = record.details.model_dir
        for staged in [r for r in record.of(MODEL_DIR) if r.id != current]:  # the previous versions' copies
            _drop_model_dir(record, staged.id, save)
        self._follow_upstream(record, save, reporter)
        queue_steps.ensure(record, spec, self.staging_root, save, reporter)
        return record

    # -- afterwards -----------------------------------------------------------------------------------------
    def refresh(self, record: Deployment) -> Deployment:
        container = record.one("container")
        if container is None:
            return record
        state = self.engine.container_state(container)
        if not state:
            record.status = DELETED
            record.failure = f"the container {container} is gone (removed, or the machine restarted)"
        elif not state.get("Running", False):
            record.status = OUT_OF_SERVICE
            record.failure = f"the container {container} is stopped (exit code {state.get('ExitCode')})"
        elif record.status in {DELETED, OUT_OF_SERVICE, CREATING}:
            record.status, record.failure = IN_SERVICE, None
        if record.status == IN_SERVICE and record.exposure is not None:
            if not self._front_alive(record):
                record.failure = (
                    f"{FRONT_DOWN} (pid {record.exposure.front_pid}) of {record.exposure.url} is not running: "
                    f"`shipyard unexpose {record.name}` then expose again (or `deploy --update` restarts it)"
                )
            elif (record.failure or "").startswith(FRONT_DOWN):
                record.failure = None
        if record.status == IN_SERVICE and record.of(queue_steps.QUEUE):
            if not queue_steps.queue_alive(record):
                record.failure = (
                    f"{queue_steps.QUEUE_DOWN} ({record.one(queue_steps.QUEUE)}) is not running: "
                    f"`shipyard deploy --update {record.name} ...` restarts it"
                )
            elif (record.failure or "").startswith(queue_steps.QUEUE_DOWN):
                record.failure = None
        return record

    def async_channel(self, record: Deployment) -> AsyncChannel:
        """``invoke --async``: the deployment's queue process and its directory bucket (deploy/queue/)."""
        return queue_steps.channel(record)

    def transport(
        self, record: Deployment, *, read_timeout_s: float, connections: int, target_model: str | None = None
    ) -> HTTPTransport:
        if not record.url:
            raise DeployError(f"{record.name} has no address; `shipyard status {record.name}`")
        headers = {TARGET_MODEL_HEADER: target_model} if target_model else None
        return HTTPTransport(record.url, max_connections=connections, headers=headers)

    def logs(self, record: Deployment, *, lines: int, follow: bool) -> Iterator[str]:
        container = record.one("container")
        if container is None:
            return
        if not follow:
            yield from self.engine.logs(container, tail=lines).splitlines()
            return
        yield from self.engine.follow_logs(container, tail=lines)

    def cleanup(self, record: Deployment, save: Save, reporter: Reporter, *, keep_artifacts: bool) -> CleanupReport:
        report = CleanupReport(record.name)
        fronts = [f"front {r.id}" for r in record.of(FRONT)] + [f"key file {r.id}" for r in record.of(KEY_FILE)]
        deleted = self.unexpose(record, save, reporter)
        report.deleted += deleted
        report.already_gone += [what for what in fronts if what not in deleted]
        queue_steps.remove(record, save, reporter, report, keep=keep_artifacts)
        for resource in list(record.of("container")):
            existed = bool(self.engine.container_state(resource.id))
            if existed:
                self.engine.stop(resource.id, grace=10)
                self.engine.remove_container(resource.id)
            record.drop("container", resource.id)
            save(record)
            (report.deleted if existed else report.already_gone).append(f"container {resource.id}")
            reporter.step(
                f"deleted container {resource.id}" if existed else f"container {resource.id} was already gone"
            )
        for resource in list(record.of(MODEL_DIR)):
            existed = _drop_model_dir(record, resource.id, save)
            (report.deleted if existed else report.already_gone).append(f"model directory {resource.id}")
        if record.image:
            report.kept.append(f"image {record.image} (the build cache of the next deploy)")
        record.touch(DELETED)
        record.details.deleted_at = now_utc().isoformat()
        save(record)
        return report

    # -- the public API and health ------------------------------------------------------------------------
    def expose(
        self, record: Deployment, options: ExposeOptions, save: Save, reporter: Reporter
    ) -> tuple[Exposure, str | None]:
        """A front on 127.0.0.1 (``deploy/front/``) that answers as API Gateway would, in front of the container."""
        if options.auth == "iam":
            raise SpecError(
                "--auth iam: SigV4 signatures are verified by API Gateway (the sagemaker target); "
                "use --auth api-key or --auth none locally",
                option="auth",
            )
        if not record.url:
            raise DeployError(f"{record.name} has no address; `shipyard status {record.name}`")
        key, key_file = None, None
        if options.auth == "api-key":
            key, key_file = new_api_key(), self._key_file(record.name)
            write_key_file(key_file, key)
            record.add(KEY_FILE, str(key_file))
            save(record)
        front = self._start_front(record, options, key_file, save)
        exposure = Exposure(
            url=front.url,
            auth=options.auth,
            path=options.path,
            rate=options.rate,
            burst=options.burst,
            quota=str(options.quota) if options.quota else None,
            key_ref=str(key_file) if key_file else None,
            front_pid=front.pid,
            front_port=front.port,
            created_at=now_utc().isoformat(),
        )
        record.exposure = exposure
        save(record)
        reporter.step(f"front (pid {front.pid}) on {front.url} → {record.url}/invocations")
        return exposure, key

    def _key_file(self, name: str) -> Path:
        return self.staging_root / f"front-{name}.key"

    def _start_front(
        self, record: Deployment, options: ExposeOptions, key_file: Path | None, save: Save, port: int | None = None
    ) -> FrontProcess:
        try:
            front = start_front(
                str(record.url),
                options,
                log_path=self.staging_root / f"front-{record.name}.log",
                key_file=key_file,
                port=port,
            )
        except BaseException:
            if key_file is not None and port is None:  # a first expose that failed leaves no key behind
                key_file.unlink(missing_ok=True)
                record.drop(KEY_FILE, str(key_file))
                save(record)
            raise
        record.add(FRONT, str(front.pid))
        save(record)
        return front

    def unexpose(self, record: Deployment, save: Save, reporter: Reporter) -> list[str]:
        """Stop the front (only a pid that is still that front) and delete the key file; idempotent."""
        port = record.exposure.front_port if record.exposure else None
        deleted = []
        for resource in list(record.of(FRONT)):
            if stop_front(int(resource.id), port):
                deleted.append(f"front {resource.id}")
                reporter.step(f"stopped the front (pid {resource.id})")
            record.drop(FRONT, resource.id)
            save(record)
        for resource in list(record.of(KEY_FILE)):
            path = Path(resource.id)
            if path.exists():
                path.unlink()
                deleted.append(f"key file {resource.id}")
            record.drop(KEY_FILE, resource.id)
            save(record)
        record.exposure = None
        save(record)
        return deleted

    def api_transport(self, record: Deployment, *, connections: int) -> Transport:
        if record.exposure is None:
            raise DeployError(not_exposed(record.name))
        key = self.api_key(record)
        return HTTPTransport(
            record.exposure.url, exact=True, headers={"x-api-key": key} if key else None, max_connections=connections
        )

    def api_key(self, record: Deployment) -> str | None:
        exposure = record.exposure
        if exposure is None or exposure.auth != "api-key" or not exposure.key_ref:
            return None
        try:
            return Path(exposure.key_ref).read_text().strip()
        except FileNotFoundError:
            raise DeployError(
                f"the key file {exposure.key_ref} is gone: `shipyard unexpose {record.name}` then expose again"
            ) from None

    def health(self, record: Deployment) -> Health:
        """The container's own ``/metrics``: counts and p50/p99 of /invocations since it started; no alarms."""
        if not record.url:
            raise DeployError(f"{record.name} has no address; `shipyard status {record.name}`")
        import httpx

        try:
            response = httpx.get(f"{record.url}/metrics", timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DeployError(f"cannot read {record.url}/metrics: {exc}") from None
        return health_from_metrics(response.text)

    def _front_alive(self, record: Deployment) -> bool:
        exposure = record.exposure
        return exposure is None or exposure.front_pid is None or is_front(exposure.front_pid, exposure.front_port)

    def _follow_upstream(self, record: Deployment, save: Save, reporter: Reporter) -> None:
        """After an update: a front whose container moved (or that died) is restarted on the container's URL,
        on the same port, with the same key."""
        exposure = record.exposure
        if exposure is None or exposure.front_pid is None:
            return
        if self._front_alive(record) and _upstream_of(exposure.front_pid) == record.url:
            return
        stop_front(exposure.front_pid, exposure.front_port)
        record.drop(FRONT, str(exposure.front_pid))
        options = ExposeOptions.parse(
            auth=exposure.auth, rate=exposure.rate, burst=exposure.burst, quota=exposure.quota, path=exposure.path
        )
        key_file = Path(exposure.key_ref) if exposure.key_ref else None
        front = self._start_front(record, options, key_file, save, port=exposure.front_port)
        exposure.front_pid = front.pid
        save(record)
        reporter.step(f"the front (pid {front.pid}) follows the container to {record.url}")


def _drop_model_dir(record: Deployment, path: str, save: Save) -> bool:
    """Delete a staged model directory and its resource in the record (saved); False when it was already gone."""
    staged = Path(path)
    existed = staged.exists()
    if existed:
        shutil.rmtree(staged)
        with contextlib.suppress(OSError):  # local/NAME beside the state file, once its last version is gone
            staged.parent.rmdir()
    record.drop(MODEL_DIR, path)
    save(record)
    return existed


def _world_readable(root: Path) -> bool:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        if (mode & 0o005) != 0o005 if path.is_dir() else not mode & 0o004:
            return False
    return True


def _read_secrets(spec: DeployOptions, region: str | None) -> dict[str, str]:
    from shipyard.cloud import Aws, aws_call

    aws = Aws(region)
    client = aws.client("secretsmanager")
    values = {}
    for secret in spec.secrets:
        with aws_call(f"read the secret {secret.name}", aws.region):
            values[secret.env_var] = str(client.get_secret_value(SecretId=secret.name)["SecretString"])
    return values


def _likely_cause(tail: tuple[str, ...], state: dict[str, object], reason: str) -> str:
    text = "\n".join(tail).lower()
    code = state.get("ExitCode") if state else None
    if "exec format error" in text:
        return "the image was built for another CPU architecture; rebuild it with `shipyard build`"
    if "modulenotfounderror" in text or "no module named" in text:
        return "a package the model needs is missing from the image: add it to code/requirements.txt"
    if "could not load the model" in text or code == 3:
        return "the model could not be loaded (see the error in the log lines)"
    if "not a model bundle" in text or ("/opt/ml/model" in text and "no such file" in text):
        return "the bundle is not where the server looks (/opt/ml/model)"
    if "address already in use" in text:
        return "the port is taken; pass another --port"
    if "startup-timeout" in reason:
        return "the model takes longer to load than --startup-timeout allows; raise it"
    if code == 137:
        return "the container was killed (out of memory?)"
    return "see the container's log lines"


def _upstream_of(pid: int) -> str | None:
    """The ``--upstream`` a front was started with (its command line)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return argv[argv.index("--upstream") + 1] if "--upstream" in argv[:-1] else None
