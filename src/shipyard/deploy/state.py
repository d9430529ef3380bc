"""The state file: what Shipyard deployed, where, and which resources each deployment owns.

One JSON document (``~/.shipyard/state.json``; ``SHIPYARD_STATE`` or an explicit path overrides it),
written atomically (a temporary file, fsync, rename) under an advisory lock, mode 0600. It holds names,
ARNs and settings, never a secret: environment variables are kept by name only and secrets by their
Secrets Manager name. The tags on AWS stay the source of truth: ``shipyard status --reconcile`` rebuilds
the file from them.

    {"version": 1, "deployments": {"NAME": {"name": ..., "target": "sagemaker", "status": "InService",
                                            "resources": [{"kind": "role", "id": "shipyard-NAME"}, ...]}}}
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

from shipyard.errors import ShipyardError

__all__ = ["STATE_ENV", "Deployment", "Resource", "StateStore", "default_state_path", "now_utc", "parse_time"]

STATE_ENV = "SHIPYARD_STATE"
VERSION = 1


def default_state_path() -> Path:
    """``$SHIPYARD_STATE`` or ``~/.shipyard/state.json``."""
    override = os.environ.get(STATE_ENV)
    return Path(override).expanduser() if override else Path.home() / ".shipyard" / "state.json"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class Resource:
    """One thing a deployment created (``owned``) or uses without owning it (a ``--role-arn`` role)."""

    kind: str
    id: str
    owned: bool = True


@dataclass
class Deployment:
    name: str
    target: str
    status: str
    source: str
    created_at: str
    updated_at: str
    region: str | None = None
    image: str | None = None
    url: str | None = None
    instance_type: str | None = None
    instance_count: int = 1
    serverless: dict[str, int] | None = None
    autoscale: dict[str, float] | None = None
    expires_at: str | None = None
    env_keys: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    failure: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)

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
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["resources"] = [Resource(**r) for r in data.get("resources", [])]
        return cls(**values)


class StateStore:
    """Read and update the state file; every change is one locked read-modify-write."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_state_path()

    def load(self) -> dict[str, Deployment]:
        if not self.path.is_file():
            return {}
        try:
            document = orjson.loads(self.path.read_bytes())
        except (orjson.JSONDecodeError, OSError) as exc:
            raise ShipyardError(
                f"the state file {self.path} cannot be read ({exc}); move it away and run "
                "`shipyard status --reconcile` to rebuild it from the tags on AWS"
            ) from None
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise ShipyardError(f"the state file {self.path} has an unknown format (expected version {VERSION})")
        return {name: Deployment.from_json(data) for name, data in document.get("deployments", {}).items()}

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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two shipyard processes never lose each other's writes
            try:
                deployments = self.load()
                yield deployments
                self._write(deployments)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, deployments: Mapping[str, Deployment]) -> None:
        document = {"version": VERSION, "deployments": {n: d.to_json() for n, d in sorted(deployments.items())}}
        data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
