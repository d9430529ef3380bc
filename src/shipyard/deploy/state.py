"""The state file: what Shipyard deployed, where, and which resources each deployment owns.

One JSON document (``~/.shipyard/state.json``; ``SHIPYARD_STATE`` or an explicit path overrides it),
written atomically (a temporary file, fsync, rename) under an advisory lock, mode 0600. It holds names,
ARNs and settings, never a secret: environment variables are kept by name only and secrets by their
Secrets Manager name. The tags on AWS stay the source of truth: ``shipyard status --reconcile`` rebuilds
the file from them.

    {"version": 1, "deployments": {"NAME": {"name": ..., "target": "sagemaker", "status": "InService",
                                            "options": {"instance_count": 2, ...},
                                            "details": {"endpoint_config": ..., "version": ...},
                                            "resources": [{"kind": "role", "id": "shipyard-NAME"}, ...]}}}

Each record keeps the options it was deployed with once (:class:`~shipyard.deploy.options.DeployOptions`,
without env values, in ``options``) and what its current version is made of (:class:`Details`). A file an
earlier version wrote (the options in ``details["spec"]``, the size, autoscaling and secrets beside them)
is read as well; it is written back in this shape. A file that cannot be read is a
:class:`~shipyard.errors.SettingsError` (``SHIPYARD_STATE`` or ``--state`` point at it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shipyard.deploy.expose import Exposure
from shipyard.deploy.options import DeployOptions
from shipyard.errors import SettingsError, SpecError
from shipyard.settings import Settings

__all__ = [
    "BenchFigures",
    "Deployment",
    "Details",
    "Resource",
    "StateStore",
    "file_lock",
    "now_utc",
    "parse_time",
    "write_atomic",
]

VERSION = 1


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class Resource:
    """One thing a deployment created (``owned``) or uses without owning it (a given execution role)."""

    kind: str
    id: str
    owned: bool = True


@dataclass
class Details:
    """What the current version of a deployment is made of, beyond its resources (the target's bookkeeping)."""

    version: str | None = None  # sagemaker: 20261123-130501 (one per deploy/update); local: 1, 2, ...
    # sagemaker
    account: str | None = None
    bucket: str | None = None
    role_arn: str | None = None
    model: str | None = None
    endpoint_config: str | None = None
    # local
    port: int | None = None
    container: str | None = None
    container_id: str | None = None
    model_dir: str | None = None
    deleted_at: str | None = None
    # sagemaker: what deleted the endpoint when Shipyard did not (its TTL schedule, its idle state machine)
    ended_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Details:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("version") is not None:
            values["version"] = str(values["version"])  # the local target's were numbers
        return cls(**values)


@dataclass
class BenchFigures:
    """The last ``shipyard bench`` of a deployment: what its alarms' latency threshold and ``expose``'s limit
    checks start from. Latencies in milliseconds, as the client measured them."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    rps: float | None = None  # the highest sustained request rate of the sweep
    measured_at: str | None = None
    via: str = "endpoint"  # endpoint (InvokeEndpoint or the container's URL) | api (the public API)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchFigures:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Deployment:
    """One deployment in the state file: its options (once), its live state, its resources."""

    name: str
    target: str
    status: str
    source: str
    created_at: str
    updated_at: str
    region: str | None = None
    image: str | None = None
    url: str | None = None
    # the size it runs at now (refreshed from the target: autoscaling changes the count)
    instance_type: str | None = None
    instance_count: int = 1
    expires_at: str | None = None
    env_keys: list[str] = field(default_factory=list)
    failure: str | None = None
    # the model registry's version it serves ("digits/3") and that registry (local | sagemaker); None for a
    # deployment of a bundle, archive or image given directly (and in files written before the registry)
    model_version: str | None = None
    model_registry: str | None = None
    options: DeployOptions | None = None  # how it was deployed (None: rebuilt from AWS without them)
    exposure: Exposure | None = None  # its public API (`shipyard expose`), if any
    bench: BenchFigures | None = None  # its last `shipyard bench`, if any
    details: Details = field(default_factory=Details)
    resources: list[Resource] = field(default_factory=list)

    @property
    def serverless(self) -> dict[str, int] | None:
        found = self.options.serverless if self.options else None
        return found.to_json() if found else None

    @property
    def secrets(self) -> list[str]:
        return [str(s) for s in self.options.secrets] if self.options else []

    def add(self, kind: str, ident: str, *, owned: bool = True) -> None:
        """Record a resource (once): called right after it is created, so a crash leaves it findable."""
        if not any(r.kind == kind and r.id == ident for r in self.resources):
            self.resources.append(Resource(kind, ident, owned))

    def drop(self, kind: str, ident: str) -> None:
        self.resources = [r for r in self.resources if not (r.kind == kind and r.id == ident)]

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def one(self, kind: str) -> str | None:
        found = self.of(kind)
        return found[-1].id if found else None

    def touch(self, status: str | None = None) -> None:
        if status is not None:
            self.status = status
        self.updated_at = now_utc().isoformat()

    def to_json(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["options"] = self.options.to_json() if self.options else None
        document["details"] = self.details.to_json()
        document["exposure"] = self.exposure.to_json() if self.exposure else None
        document["bench"] = self.bench.to_json() if self.bench else None
        document["resources"] = [asdict(r) for r in self.resources]
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        """A record as this version writes it, or as earlier ones did (the options in ``details["spec"]``,
        the size and secrets beside them)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        old_details = dict(data.get("details") or {})
        kept = values.pop("options", None) or old_details.pop("spec", None)
        values["details"] = Details.from_json(old_details)
        values["resources"] = [Resource(**r) for r in data.get("resources", [])]
        values["options"] = _options(kept, data)
        values["exposure"] = Exposure.from_json(data["exposure"]) if data.get("exposure") else None
        values["bench"] = BenchFigures.from_json(data["bench"]) if data.get("bench") else None
        return cls(**values)


def _options(kept: Mapping[str, Any] | None, data: Mapping[str, Any]) -> DeployOptions | None:
    if kept is None and "options" not in data:
        kept = _legacy_options(data)
    if kept is None:
        return None
    identity = {k: data[k] for k in ("source", "name", "target") if k in data}
    return DeployOptions.from_json(kept, **identity, region=data.get("region"))


def _legacy_options(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The options of an older record that had none kept (rebuilt from AWS): its size and secrets."""
    if data.get("target") != "sagemaker":
        return None
    if data.get("serverless"):
        return {"serverless": data["serverless"], "secrets": data.get("secrets") or []}
    size = {"instance_type": data.get("instance_type"), "instance_count": data.get("instance_count")}
    return {**size, "secrets": data.get("secrets") or []} if data.get("instance_type") else None


class StateStore:
    """Read and update the state file; every change is one locked read-modify-write.

    ``path``: the state file (default: ``settings.state_path``, ``$SHIPYARD_STATE`` else ``~/.shipyard/state.json``).
    """

    def __init__(self, path: str | Path | None = None, *, settings: Settings | None = None) -> None:
        self.path = Path(path).expanduser() if path else (settings or Settings.from_env()).state_path

    def load(self) -> dict[str, Deployment]:
        if not self.path.is_file():
            return {}
        try:
            document = orjson.loads(self.path.read_bytes())
        except (orjson.JSONDecodeError, OSError) as exc:
            raise SettingsError(
                f"the state file {self.path} cannot be read ({exc}); move it away and run "
                "`shipyard status --reconcile` to rebuild it from the tags on AWS",
                setting="SHIPYARD_STATE",
            ) from None
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise SettingsError(
                f"the state file {self.path} has an unknown format (expected version {VERSION})",
                setting="SHIPYARD_STATE",
            )
        try:
            return {name: Deployment.from_json(data) for name, data in document.get("deployments", {}).items()}
        except (SpecError, TypeError, ValueError, KeyError) as exc:
            raise SettingsError(
                f"the state file {self.path} has a record that cannot be read ({exc}); move it away and run "
                "`shipyard status --reconcile` to rebuild it from the tags on AWS",
                setting="SHIPYARD_STATE",
            ) from None

    def get(self, name: str) -> Deployment | None:
        return self.load().get(name)

    def all(self) -> list[Deployment]:
        return sorted(self.load().values(), key=lambda d: d.created_at)

    def put(self, deployment: Deployment) -> None:
        with self._locked() as deployments:
            deployments[deployment.name] = deployment

    def remove(self, name: str) -> None:
        with self._locked() as deployments:
            deployments.pop(name, None)

    def replace_all(self, deployments: Mapping[str, Deployment]) -> None:
        with self._locked() as current:
            current.clear()
            current.update(deployments)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Deployment]]:
        with file_lock(self.path):  # two shipyard processes never lose each other's writes
            deployments = self.load()
            yield deployments
            self._write(deployments)

    def _write(self, deployments: Mapping[str, Deployment]) -> None:
        document = {"version": VERSION, "deployments": {n: d.to_json() for n, d in sorted(deployments.items())}}
        data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        write_atomic(self.path, data + b"\n", prefix=".state-")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``PATH.lock`` (the folder made first, mode 0700) for one read-modify-write of
    ``path``: the state file's, and the local model registry's."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes, *, prefix: str) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file beside it, fsync, rename), mode 0600: a reader
    sees the old document or the new one, never half of one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".json")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
