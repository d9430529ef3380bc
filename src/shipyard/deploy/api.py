"""Deploy, update, status, invoke, logs and cleanup over any target, with the state file kept in step.

:class:`Deployer` is what the CLI and the Python API (:func:`shipyard.deploy`) both use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shipyard.client.transport import Reply, Transport, send_one
from shipyard.deploy.base import (
    CREATING,
    DELETED,
    FAILED,
    IN_SERVICE,
    CleanupReport,
    Plan,
    Reporter,
    SilentReporter,
    Target,
)
from shipyard.deploy.endpoint import Endpoint
from shipyard.deploy.spec import Autoscale, DeploySpec, SecretRef, Serverless
from shipyard.deploy.state import Deployment, StateStore, now_utc, parse_time
from shipyard.errors import DeployError, NotDeployed, SpecError
from shipyard.pricing import prices

__all__ = ["Deployer", "StatusRow"]


@dataclass(frozen=True)
class StatusRow:
    name: str
    target: str
    status: str
    size: str  # "2 × ml.m5.large", "serverless 2048 MB × 10", "1 container"
    created: datetime
    age: timedelta
    expires_at: datetime | None
    hourly_usd: float | None
    so_far_usd: float | None
    failure: str | None
    url: str | None = None  # local: http://127.0.0.1:PORT; sagemaker: the InvokeEndpoint URL of its region
    region: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    serverless: dict[str, int] | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= now_utc()


class Deployer:
    """Every deployment operation over the targets, with ``state`` (the state file) kept in step.

    The targets it makes itself work beside ``state`` (the local target stages an extracted model.tar.gz in
    ``local/`` next to the state file); one given in ``targets`` is used as it is.
    """

    def __init__(
        self,
        state: StateStore | None = None,
        *,
        targets: dict[str, Target] | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.state = state or StateStore()
        self._targets: dict[str, Target] = dict(targets or {})
        self.reporter: Reporter = reporter or SilentReporter()

    # -- targets ------------------------------------------------------------------------------------------
    def target(self, name: str) -> Target:
        if name not in self._targets:
            if name == "local":
                from shipyard.deploy.local import LocalTarget

                self._targets[name] = LocalTarget(state_path=self.state.path)  # stages beside the state
            elif name == "sagemaker":
                from shipyard.deploy.sagemaker import SageMakerTarget

                self._targets[name] = SageMakerTarget()
            else:
                raise SpecError(f"unknown target {name!r}: use local or sagemaker")
        return self._targets[name]

    def record(self, name: str) -> Deployment:
        record = self.state.get(name)
        if record is None:
            raise NotDeployed(
                f"no deployment named {name!r} in {self.state.path}; `shipyard status` lists them "
                "(`shipyard status --reconcile --region R` rebuilds the list from AWS)"
            )
        return record

    # -- deploy ---------------------------------------------------------------------------------------------
    def plan(self, spec: DeploySpec) -> Plan:
        spec.check()
        return self.target(spec.target).plan(spec)

    def deploy(self, spec: DeploySpec) -> Endpoint:
        spec.check()
        existing = self.state.get(spec.name)
        if existing is not None:
            raise SpecError(
                f"a deployment named {spec.name!r} already exists ({existing.target}, {existing.status}): "
                f"`shipyard deploy --update {spec.name} ...` replaces its model, `shipyard cleanup {spec.name}` "
                "removes it"
            )
        now = now_utc()
        expires = spec.expires_at(now)
        record = Deployment(
            name=spec.name,
            target=spec.target,
            status=CREATING,
            source=spec.source,
            created_at=now.isoformat(),
            updated_at=now.isoformat(),
            expires_at=expires.isoformat() if expires else None,
        )
        record.details["spec"] = _remember(spec)
        target = self.target(spec.target)
        try:
            record = target.deploy(spec, record, self.state.put, self.reporter)
        except BaseException:
            # Keep the record only while it still names something to clean up.
            current = self.state.get(spec.name)
            if current is not None and not current.resources:
                self.state.remove(spec.name)
            raise
        self.state.put(record)
        return Endpoint(self, record)

    def update(self, name: str, source: str, **options: Any) -> Endpoint:
        """Replace the model of ``name`` with ``source``; settings not in ``options`` stay as deployed."""
        record = self.record(name)
        if record.status not in {IN_SERVICE, FAILED}:
            raise DeployError(f"{name} is {record.status}; it can be updated when it is InService")
        if options.get("target", record.target) != record.target:
            raise SpecError(f"{name} runs on {record.target}; an update cannot move it to {options['target']}")
        kept = {**record.details.get("spec", {}), **options, "target": record.target}
        if "serverless" in options:  # instances → serverless
            for key in ("instance_type", "instance_count", "autoscale"):
                kept.pop(key, None)
        elif "instance_type" in options or "instance_count" in options:  # serverless → instances
            kept.pop("serverless", None)
        spec = DeploySpec(source=source, name=name, **_revive(kept)).check()
        target = self.target(record.target)
        record = target.update(spec, record, self.state.put, self.reporter)
        record.details["spec"] = _remember(spec)
        self.state.put(record)
        return Endpoint(self, record)

    def get(self, name: str) -> Endpoint:
        return Endpoint(self, self.record(name))

    def refresh(self, name: str) -> Deployment:
        record = self.record(name)
        record = self.target(record.target).refresh(record)
        self.state.put(record)
        return record

    # -- afterwards -----------------------------------------------------------------------------------------
    def invoke(
        self, name: str, body: bytes, *, content_type: str, accept: str | None = None, timeout_s: float = 60.0
    ) -> Reply:
        """One request through the deployment's transport; :class:`~shipyard.errors.InvokeError` on an error."""
        transport = self.transport(name, read_timeout_s=timeout_s, connections=1)
        return send_one(transport, body, content_type=content_type, accept=accept, timeout_s=timeout_s)

    def transport(self, name: str, *, read_timeout_s: float = 65.0, connections: int = 4) -> Transport:
        """Many requests to ``name``: its URL for ``local``, ``InvokeEndpoint`` for ``sagemaker`` (close it after)."""
        record = self.record(name)
        return self.target(record.target).transport(record, read_timeout_s=read_timeout_s, connections=connections)

    def logs(self, name: str, *, lines: int = 50, follow: bool = False) -> Iterator[str]:
        record = self.record(name)
        return self.target(record.target).logs(record, lines=lines, follow=follow)

    def status(self, name: str | None = None, *, refresh: bool = True) -> list[StatusRow]:
        records = [self.record(name)] if name else self.state.all()
        rows = []
        for record in records:
            if refresh:
                record = self.target(record.target).refresh(record)
                self.state.put(record)
            rows.append(_row(record))
        return rows

    def reconcile(self, region: str | None = None) -> list[Deployment]:
        """Rebuild the records of the SageMaker deployments in ``region`` from their tags; refresh local ones."""
        from shipyard.cloud.session import Aws
        from shipyard.deploy.sagemaker.reconcile import reconcile

        aws = Aws(region)
        found = reconcile(aws)
        current = self.state.load()
        for name, record in list(current.items()):
            if record.target == "sagemaker" and record.region == aws.region and name not in found:
                del current[name]  # nothing on AWS carries its tag any more
        for name, record in found.items():
            if not record.resources:
                continue
            old = current.get(name)
            if old is not None and old.target == "sagemaker":
                record.created_at, record.source, record.expires_at = old.created_at, old.source, record.expires_at
                record.details = {**old.details, **record.details}
            current[name] = record
        for name, record in list(current.items()):
            if record.target == "local":
                current[name] = self.target("local").refresh(record)
        self.state.replace_all(current)
        return sorted(current.values(), key=lambda d: d.created_at)

    def cleanup(self, name: str, *, keep_artifacts: bool = False) -> CleanupReport:
        """Delete what ``name`` created, in dependency order; run it again to finish a cleanup cut short.

        Idempotent: resources already gone are reported as such, and a name without a record (never
        deployed here, or cleaned up already) gives an empty report with ``recorded=False``, not an error.
        """
        record = self.state.get(name)
        if record is None:
            return CleanupReport(name, recorded=False)
        report = self.target(record.target).cleanup(
            record, self.state.put, self.reporter, keep_artifacts=keep_artifacts
        )
        if record.resources:
            record.status = DELETED if keep_artifacts else record.status
            self.state.put(record)
        else:
            self.state.remove(name)
            report.forgotten = True
        return report

    def expired(self) -> list[str]:
        now = now_utc()
        return [r.name for r in self.state.all() if r.expires_at and (parse_time(r.expires_at) or now) <= now]


def _row(record: Deployment) -> StatusRow:
    created = parse_time(record.created_at) or now_utc()
    age = now_utc() - created
    table = prices()
    hourly: float | None
    url = record.url
    if record.target == "local":
        hourly = 0.0
        size = "1 container"
    elif record.serverless:
        hourly = 0.0  # billed per request; idle costs nothing
        size = f"serverless {record.serverless['memory_mb']} MB × {record.serverless['max_concurrency']}"
    else:
        hourly = table.hourly(record.instance_type, record.instance_count)
        size = f"{record.instance_count} × {record.instance_type}"
    if record.target == "sagemaker" and record.region:
        url = runtime_url(record.region, record.name)
    live = record.status not in {DELETED, FAILED}
    so_far = None if hourly is None else (hourly * age.total_seconds() / 3600 if live or hourly == 0 else None)
    return StatusRow(
        name=record.name,
        target=record.target,
        status=record.status,
        size=size,
        created=created,
        age=age,
        expires_at=parse_time(record.expires_at),
        hourly_usd=hourly if live else 0.0,
        so_far_usd=so_far,
        failure=record.failure,
        url=url,
        region=record.region,
        instance_type=record.instance_type if record.target == "sagemaker" and not record.serverless else None,
        instance_count=record.instance_count if record.target == "sagemaker" and not record.serverless else None,
        serverless=dict(record.serverless) if record.serverless else None,
    )


def runtime_url(region: str, endpoint: str) -> str:
    """Where InvokeEndpoint sends an endpoint's requests (what a caller outside Shipyard signs and POSTs to)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://runtime.sagemaker.{region}.{suffix}/endpoints/{endpoint}/invocations"


# Settings kept in the record so an update changes only what it names; never env values or secret values.
_REMEMBERED = (
    "instance_type",
    "instance_count",
    "serverless",
    "autoscale",
    "secrets",
    "data_capture_pct",
    "startup_timeout_s",
    "role_arn",
    "log_retention_days",
    "bucket",
    "registry_override",
    "port",
    "engine",
    "base_image",
    "workers",
)


def _remember(spec: DeploySpec) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key in _REMEMBERED:
        value = getattr(spec, key)
        if value is None:
            continue
        if isinstance(value, Serverless | Autoscale):
            value = dataclasses.asdict(value)
        elif key == "secrets":
            value = [str(s) for s in value]
        kept[key] = value
    return kept


def _revive(kept: dict[str, Any]) -> dict[str, Any]:
    values = dict(kept)
    if isinstance(values.get("serverless"), dict):
        values["serverless"] = Serverless(**values["serverless"])
    if isinstance(values.get("autoscale"), dict):
        values["autoscale"] = Autoscale(**values["autoscale"])
    if isinstance(values.get("secrets"), list):
        values["secrets"] = tuple(SecretRef.parse(s) for s in values["secrets"])
    return values
