"""The ``local`` target: the real image under Podman or Docker, hosted the way SageMaker hosts it.

``IMAGE serve`` with the bundle mounted read-only at ``/opt/ml/model``, port 8080 published on 127.0.0.1,
``/ping`` polled with a live status line (Creating → InService) for up to ``--startup-timeout`` seconds
(SageMaker's ContainerStartupHealthCheckTimeoutInSeconds); a container that exits or never answers ends
``Failed`` with its last log lines and the likely cause. The engine is the truth afterwards: ``refresh``
reads the container's state, so a container gone after a reboot shows as gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from shipyard.bundle.archive import extract_archive, make_readable, pack
from shipyard.client.transport import HTTPTransport
from shipyard.deploy.base import (
    CREATING,
    DELETED,
    FAILED,
    IN_SERVICE,
    CleanupReport,
    Plan,
    Reporter,
    Save,
)
from shipyard.deploy.images import ImageService, ResolvedImage
from shipyard.deploy.spec import DeploySpec
from shipyard.deploy.state import Deployment, default_state_path, now_utc
from shipyard.errors import DeployError, DeployFailed, SpecError

if TYPE_CHECKING:
    from shipyard.image import Engine

__all__ = ["LABEL", "LocalTarget"]

LABEL = "dev.shipyard.deployment"
OUT_OF_SERVICE = "OutOfService"
MODEL_DIR = "model-dir"  # resource kind: a model.tar.gz extracted for the container to mount


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalTarget:
    name = "local"

    def __init__(
        self,
        images: ImageService | None = None,
        *,
        engine: str | None = None,
        poll_s: float = 0.05,
        state_path: str | Path | None = None,
    ) -> None:
        """``state_path``: the state file of the deployments (a :class:`~shipyard.deploy.Deployer` passes its
        store's); an extracted ``model.tar.gz`` is staged beside it, in ``local/NAME/``. Default: the default
        state file's (``$SHIPYARD_STATE``, else ``~/.shipyard/state.json``)."""
        self._images = images
        self._engine_name = engine
        self.poll_s = poll_s
        self._state_path = Path(state_path).expanduser() if state_path is not None else None

    @property
    def staging_root(self) -> Path:
        """Where model.tar.gz files are extracted for the containers: ``local/`` beside the state file."""
        return (self._state_path or default_state_path()).parent / "local"

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from shipyard.deploy.engine_images import EngineImages

            self._images = EngineImages(self._engine_name)
        return self._images

    @functools.cached_property
    def engine(self) -> Engine:
        from shipyard.image import detect

        return detect(self._engine_name)

    # -- deploy ---------------------------------------------------------------------------------------------
    def plan(self, spec: DeploySpec) -> Plan:
        plan = Plan(spec.name, self.name, price_label="local: no cloud cost")
        plan.add("image", spec.image or f"built from {spec.source}", "the model mounted at /opt/ml/model", 0.0)
        plan.add("container", f"shipyard-{spec.name}", f"127.0.0.1:{spec.port or 'a free port'} → 8080", 0.0)
        return plan

    def deploy(self, spec: DeploySpec, record: Deployment, save: Save, reporter: Reporter) -> Deployment:
        if spec.serverless or spec.autoscale or spec.data_capture_pct or spec.role_arn:
            raise SpecError("--serverless, --autoscale, --data-capture and --role-arn apply to --target sagemaker")
        resolved = self.images.resolve(
            spec.source, name=spec.name, bake_model=False, image=spec.image, base=spec.base_image, reporter=reporter
        )
        self._start(spec, record, save, reporter, resolved, version=1)
        return record

    def _model_dir(self, spec: DeploySpec, resolved: ResolvedImage, version: int) -> tuple[Path | None, bool]:
        """The directory mounted at /opt/ml/model, and whether it was staged (and so is cleanup's to delete):
        the bundle itself, or a model.tar.gz extracted once per version (a failed update's restarted old
        container keeps its own copy)."""
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

    def _start(
        self,
        spec: DeploySpec,
        record: Deployment,
        save: Save,
        reporter: Reporter,
        resolved: ResolvedImage,
        *,
        version: int,
    ) -> None:
        container = f"shipyard-{spec.name}-{version}"
        if self.engine.container_state(container):
            raise SpecError(
                f"a container named {container} already exists: `shipyard cleanup {spec.name}` "
                f"or `{self.engine.name} rm -f {container}`"
            )
        port = spec.port or int(record.details.get("port") or 0) or _free_port()
        options = ["--name", container, "--label", f"{LABEL}={spec.name}", "-p", f"127.0.0.1:{port}:8080"]
        model_dir, staged = self._model_dir(spec, resolved, version)
        if staged:
            record.add(MODEL_DIR, str(model_dir))
            save(record)
        if model_dir is not None:
            options += ["-v", f"{model_dir}:/opt/ml/model:ro"]
        if spec.workers:
            options += ["-e", f"SAGEMAKER_MODEL_SERVER_WORKERS={spec.workers}"]
        for key, value in spec.env.items():
            options += ["-e", f"{key}={value}"]
        engine = self.engine
        started = time.monotonic()
        try:
            if spec.secrets:
                # Read on this machine with its credentials and handed over through the engine's environment
                # (``-e VAR`` names the variable only), so no value appears on a command line or in the state.
                values = _read_secrets(spec, record.region)
                engine = dataclasses.replace(engine, env={**engine.env, **values})
                options += [arg for var in values for arg in ("-e", var)]
            container_id = engine.run_detached(resolved.image, ["serve"], options)
        except BaseException:
            if staged:  # no container uses it: leave nothing behind
                _drop_model_dir(record, str(model_dir), save)
            raise
        record.add("container", container)
        record.image, record.url = resolved.image, f"http://127.0.0.1:{port}"
        record.details.update(port=port, container=container, container_id=container_id[:12], version=version)
        record.details["model_dir"] = str(model_dir) if staged else None
        record.env_keys = sorted(spec.env)
        record.secrets = [str(s) for s in spec.secrets]
        record.instance_type, record.instance_count = None, 1
        record.touch(CREATING)
        save(record)
        reporter.step(f"container {container} ({resolved.image}) on {record.url}")
        try:
            self._wait(container, record.url, spec.startup_timeout_s, reporter, started)
        except DeployFailed as failure:
            self.engine.remove_container(container)
            record.drop("container", container)
            if staged:
                _drop_model_dir(record, str(model_dir), save)
            record.failure = str(failure)
            record.touch(FAILED)
            save(record)
            raise
        record.touch(IN_SERVICE)
        save(record)

    def _wait(self, container: str, url: str, timeout_s: float, reporter: Reporter, started: float) -> None:
        with httpx.Client(timeout=2.0) as client:
            while True:
                elapsed = time.monotonic() - started
                try:
                    if client.get(f"{url}/ping").status_code == 200:
                        reporter.status(IN_SERVICE, elapsed)
                        return
                except httpx.HTTPError:
                    pass
                state = self.engine.container_state(container)
                if state and not state.get("Running", False):
                    self._fail(container, f"the container exited with code {state.get('ExitCode')}", state)
                if elapsed > timeout_s:
                    self._fail(container, f"/ping did not answer 200 within --startup-timeout {timeout_s:g} s", state)
                reporter.status(CREATING, elapsed)
                time.sleep(self.poll_s)

    def _fail(self, container: str, reason: str, state: dict[str, object]) -> None:
        tail = tuple(self.engine.logs(container, tail=30).splitlines())
        raise DeployFailed(
            f"Failed: {reason}; likely cause: {_likely_cause(tail, state, reason)}",
            reason=reason,
            log_tail=tail,
        )

    def update(self, spec: DeploySpec, record: Deployment, save: Save, reporter: Reporter) -> Deployment:
        """Stop the old container, start the new one on the same port; restart the old one if it fails."""
        old = record.one("container")
        old_model_dir = record.details.get("model_dir")
        version = int(record.details.get("version", 1)) + 1
        resolved = self.images.resolve(
            spec.source, name=spec.name, bake_model=False, image=spec.image, base=spec.base_image, reporter=reporter
        )
        if old:
            self.engine.stop(old, grace=10)
        try:
            self._start(spec, record, save, reporter, resolved, version=version)
        except DeployFailed as failure:
            if old:
                subprocess.run([self.engine.binary, "start", old], capture_output=True, check=False, timeout=60)
                record.details.update(container=old, version=version - 1, model_dir=old_model_dir)
                self._wait(old, record.url or "", spec.startup_timeout_s, reporter, time.monotonic())  # serving again
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
        current = record.details.get("model_dir")
        for staged in [r for r in record.of(MODEL_DIR) if r.id != current]:  # the previous versions' copies
            _drop_model_dir(record, staged.id, save)
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
        return record

    def transport(self, record: Deployment, *, read_timeout_s: float, connections: int) -> HTTPTransport:
        if not record.url:
            raise DeployError(f"{record.name} has no address; `shipyard status {record.name}`")
        return HTTPTransport(record.url, max_connections=connections)

    def logs(self, record: Deployment, *, lines: int, follow: bool) -> Iterator[str]:
        container = record.one("container")
        if container is None:
            return
        if not follow:
            yield from self.engine.logs(container, tail=lines).splitlines()
            return
        process = subprocess.Popen(
            [self.engine.binary, "logs", "--follow", "--tail", str(lines), container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                yield line.rstrip("\n")
        finally:
            process.terminate()
            process.wait(timeout=10)

    def cleanup(self, record: Deployment, save: Save, reporter: Reporter, *, keep_artifacts: bool) -> CleanupReport:
        report = CleanupReport(record.name)
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
        record.details["deleted_at"] = now_utc().isoformat()
        save(record)
        return report


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


def _read_secrets(spec: DeploySpec, region: str | None) -> dict[str, str]:
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
