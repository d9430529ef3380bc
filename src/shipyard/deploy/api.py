"""Deploy, update, status, invoke, logs and cleanup over any target, with the state file kept in step.

:class:`Deployer` is what the CLI and the Python API (:func:`shipyard.deploy`) both use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shipyard.client.transport import Reply, Transport, send_one
from shipyard.deploy.asynchronous import AsyncHandle, Decode, Journal, check_inference_id, new_inference_id
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
    SilentReporter,
    Target,
)
from shipyard.deploy.endpoint import Endpoint
from shipyard.deploy.expose import ExposeOptions, Exposure, not_exposed
from shipyard.deploy.options import DEFAULT_INSTANCE_TYPE, DeployOptions, parse_changes
from shipyard.deploy.state import BenchFigures, Deployment, StateStore, now_utc, parse_time
from shipyard.errors import DeployError, InvokeError, NotDeployed, ShipyardError, SpecError
from shipyard.pricing import PriceTable, prices
from shipyard.settings import Settings
from shipyard.units import format_duration, format_utc

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
    # the spend guards that run in AWS, one line each ("TTL: EventBridge Scheduler deletes the endpoint at ...")
    guards: tuple[str, ...] = ()
    # what ended a deployment Shipyard did not delete itself ("its TTL schedule deleted the endpoint at ...")
    ended_by: str | None = None
    # where hourly_usd came from: "AWS Price List API, us-east-1, read 2026-12-03" or the shipped table's label
    price_source: str | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= now_utc()


class Deployer:
    """Every deployment operation over the targets, with ``state`` (the state file) kept in step.

    The targets it makes itself work beside ``state`` (the local target stages an extracted model.tar.gz in
    ``local/`` next to the state file) with ``settings`` (default: :meth:`Settings.from_env`); one given in
    ``targets`` is used as it is.
    """

    def __init__(
        self,
        state: StateStore | None = None,
        *,
        targets: dict[str, Target] | None = None,
        reporter: Reporter | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.state = state or StateStore(settings=self.settings)
        self._targets: dict[str, Target] = dict(targets or {})
        self.reporter: Reporter = reporter or SilentReporter()

    # -- targets ------------------------------------------------------------------------------------------
    def target(self, name: str) -> Target:
        if name not in self._targets:
            if name == "local":
                from shipyard.deploy.local import LocalTarget

                self._targets[name] = LocalTarget(state_path=self.state.path, settings=self.settings)
            elif name == "sagemaker":
                from shipyard.deploy.sagemaker import SageMakerTarget

                self._targets[name] = SageMakerTarget(settings=self.settings)
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
    def plan(self, options: DeployOptions) -> Plan:
        return self.target(options.target).plan(options)

    def deploy(self, options: DeployOptions) -> Endpoint:
        existing = self.state.get(options.name)
        if existing is not None:
            raise SpecError(
                f"a deployment named {options.name!r} already exists ({existing.target}, {existing.status}): "
                f"`shipyard deploy --update {options.name} ...` replaces its model, `shipyard cleanup "
                f"{options.name}` removes it",
                option="name",
            )
        if options.rollout is not None or options.bake_s is not None:
            option = options.rollout.option if options.rollout is not None else "bake_s"
            raise SpecError(
                f"{option} guards an update (`deploy --update {options.name} NEW`): a first deploy has no old "
                "fleet to shift traffic from or roll back to",
                option=option,
            )
        run = DeployRun(options, _new_record(options), self.state.put, self.reporter)
        try:
            record = self.target(options.target).deploy(run)
        except BaseException:
            # Keep the record only while it still names something to clean up.
            current = self.state.get(options.name)
            if current is not None and not current.resources:
                self.state.remove(options.name)
            raise
        self.state.put(record)
        return Endpoint(self, record)

    def update(self, name: str, source: str, **changes: Any) -> Endpoint:
        """Replace the model of ``name`` with ``source``; the options not in ``changes`` stay as deployed.

        ``changes`` are :class:`DeployOptions` fields, typed or in their user-facing forms (``serverless="2048:10"``);
        on sagemaker, ``canary="10%:5m"``, ``linear="25%:2m"`` or ``all_at_once=True`` and ``bake="10m"`` guard the
        update (SageMaker's deployment guardrails: :mod:`shipyard.deploy.sagemaker.guard`).
        """
        record = self.record(name)
        if record.status not in {IN_SERVICE, FAILED}:
            raise DeployError(f"{name} is {record.status}; it can be updated when it is InService")
        typed = parse_changes(**changes)
        if typed.get("target", record.target) != record.target:
            raise SpecError(
                f"{name} runs on {record.target}; an update cannot move it to {typed['target']}", option="target"
            )
        options = _updated(record, source, typed)
        expiry = record.expires_at
        if "ttl" in typed:  # a new --ttl counts from now: the TTL schedule moves (--ttl off: it goes)
            record.expires_at = (now_utc() + typed["ttl"]).isoformat() if typed["ttl"] else None
        try:
            record = self.target(record.target).update(DeployRun(options, record, self.state.put, self.reporter))
        except BaseException:
            if record.expires_at != expiry:  # the update did not get to move the schedule
                record.expires_at = expiry
                self.state.put(record)
            raise
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
        self,
        name: str,
        body: bytes,
        *,
        content_type: str,
        accept: str | None = None,
        timeout_s: float = 60.0,
        via: str = "endpoint",
        target_model: str | None = None,
    ) -> Reply:
        """One request through the deployment's transport; :class:`~shipyard.errors.InvokeError` on an error.
        ``target_model``: a multi-model endpoint's model."""
        transport = self.transport(name, read_timeout_s=timeout_s, connections=1, via=via, target_model=target_model)
        try:
            return send_one(transport, body, content_type=content_type, accept=accept, timeout_s=timeout_s)
        finally:
            transport.close()

    def transport(
        self,
        name: str,
        *,
        read_timeout_s: float = 65.0,
        connections: int = 4,
        via: str = "endpoint",
        target_model: str | None = None,
    ) -> Transport:
        """Many requests to ``name`` (close it after). ``via="endpoint"``: its URL for ``local``, ``InvokeEndpoint``
        for ``sagemaker``; ``via="api"``: its public API (``expose``), as its callers reach it."""
        record = self.record(name)
        target = self.target(record.target)
        if via == "api":
            if record.exposure is None:
                raise DeployError(not_exposed(name))
            return target.api_transport(record, connections=connections)
        if via != "endpoint":
            raise SpecError(f"--via {via!r}: endpoint or api", option="via")
        if target_model:  # a multi-model endpoint's model
            return target.transport(
                record, read_timeout_s=read_timeout_s, connections=connections, target_model=target_model
            )
        return target.transport(record, read_timeout_s=read_timeout_s, connections=connections)

    # -- asynchronous inference (deploy --async) -------------------------------------------------------------
    def journal(self, name: str) -> Journal:
        """Where the invocations of ``name``'s queue are remembered (beside the state file)."""
        return Journal(self.state.path.parent / "async" / name)

    def invoke_async(
        self,
        name: str,
        body: bytes,
        *,
        content_type: str,
        accept: str | None = None,
        inference_id: str | None = None,
        timeout_s: int | None = None,
        decode: Decode | None = None,
    ) -> AsyncHandle:
        """Queue one request on an asynchronous deployment (its input put where the endpoint reads it); the handle
        on its outcome. ``timeout_s``: InvocationTimeoutSeconds (the deployment's --invocation-timeout if None)."""
        record = self.record(name)
        channel = self.target(record.target).async_channel(record)
        identifier = check_inference_id(inference_id) if inference_id else new_inference_id()
        invocation = channel.submit(
            body, content_type=content_type, accept=accept, inference_id=identifier, timeout_s=timeout_s
        )
        self.journal(name).record(invocation)
        return AsyncHandle(channel, invocation, decode=decode)

    def async_handle(self, name: str, inference_id: str, *, decode: Decode | None = None) -> AsyncHandle:
        """The handle on an invocation made earlier (``shipyard results NAME ID``)."""
        record = self.record(name)
        invocation = self.journal(name).find(inference_id)
        if invocation is None:
            known = [i.inference_id for i in self.journal(name).all()][-3:]
            hint = f"; the latest: {', '.join(known)}" if known else ""
            raise InvokeError(
                f"no asynchronous invocation {inference_id!r} of {name} was made from here "
                f"({self.journal(name).directory}){hint}"
            )
        return AsyncHandle(self.target(record.target).async_channel(record), invocation, decode=decode)

    # -- the public API, alarms and figures -------------------------------------------------------------------
    def expose(self, name: str, options: ExposeOptions | None = None) -> tuple[Exposure, str | None]:
        """Put ``name`` on a public API (API Gateway on ``sagemaker``, a front on 127.0.0.1 on ``local``); the
        exposure and, for ``--auth api-key``, the key (kept by the target; returned here to print on request)."""
        record = self.record(name)
        if record.status != IN_SERVICE:
            raise DeployError(f"{name} is {record.status}; it can be exposed when it is InService")
        if record.exposure is not None:
            raise DeployError(
                f"{name} is exposed already at {record.exposure.url}: `shipyard unexpose {name}` removes that API"
            )
        exposure, key = self.target(record.target).expose(
            record, options or ExposeOptions(), self.state.put, self.reporter
        )
        self.state.put(record)
        return exposure, key

    def unexpose(self, name: str) -> list[str]:
        """Remove the public API of ``name`` (nothing to do when it has none); what was deleted."""
        record = self.record(name)
        deleted = self.target(record.target).unexpose(record, self.state.put, self.reporter)
        record.exposure = None
        self.state.put(record)
        return deleted

    def api_key(self, name: str) -> str | None:
        record = self.record(name)
        if record.exposure is None:
            raise DeployError(not_exposed(name))
        return self.target(record.target).api_key(record)

    def health(self, name: str) -> Health:
        """The alarms' states and the recent traffic of ``name`` (``shipyard status NAME``)."""
        record = self.record(name)
        return self.target(record.target).health(record)

    def note_bench(self, name: str, figures: BenchFigures) -> Deployment:
        """Keep the figures of the last ``shipyard bench`` of ``name`` (its alarms and ``expose`` read them).

        A target with ``tune_alarms`` (sagemaker) re-puts the ModelLatency alarm with the threshold the new figures
        give; what changed is told to the reporter (``alarm shipyard-NAME-ModelLatency: p99 > 250 ms ...``).
        """
        record = self.record(name)
        record.bench = figures
        self.state.put(record)
        tune = getattr(self.target(record.target), "tune_alarms", None)
        changed = tune(record) if tune is not None else None
        if changed:
            self.reporter.step(str(changed))
        return record

    def logs(self, name: str, *, lines: int = 50, follow: bool = False) -> Iterator[str]:
        record = self.record(name)
        return self.target(record.target).logs(record, lines=lines, follow=follow)

    def status(self, name: str | None = None, *, refresh: bool = True) -> list[StatusRow]:
        records = [self.record(name)] if name else self.state.all()
        rows = []
        tables: dict[str, PriceTable] = {}
        for record in records:
            if refresh:
                record = self.target(record.target).refresh(record)
                self.state.put(record)
            rows.append(_row(record, self._prices(record, tables)))
        return rows

    def _prices(self, record: Deployment, tables: dict[str, PriceTable]) -> PriceTable:
        """The prices of ``record``'s region (deploy/cost.prices_for: the cache, the Price List API or the
        shipped table), asked once per region; only a live instance endpoint needs them."""
        if record.target != "sagemaker" or record.serverless or not record.region or record.status in {DELETED, FAILED}:
            return prices()
        if record.region not in tables:
            from shipyard.deploy.cost import prices_for

            aws_of = getattr(self.target(record.target), "aws", None)
            try:
                aws = aws_of(record.region) if aws_of is not None else None
            except ShipyardError:
                aws = None
            tables[record.region] = prices_for(record.region, aws, self.settings)
        return tables[record.region]

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
                record.details = dataclasses.replace(old.details, **record.details.to_json())
                record.options = old.options or record.options
                record.model_version, record.model_registry = old.model_version, old.model_registry  # not on AWS tags
                record.bench = old.bench
                if old.exposure is not None and any(r.id == old.exposure.api_id for r in record.of("rest-api")):
                    record.exposure = old.exposure  # its API is still there
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
            self.journal(name).remove()  # --async: the invocations' records go with the deployment
        return report

    # -- handing a deployment over to infrastructure as code ------------------------------------------------------
    def export(self, name: str, format: str, directory: str | Path) -> list[Path]:
        """Write what ``name`` runs on AWS as ``format`` (cloudformation, cdk, terraform) into ``directory``; the
        files written. Reads AWS only (docs/export.md)."""
        record = self.record(name)
        target = self._handover(record, "export")
        files: list[Path] = target.export(record, format, Path(directory))
        return files

    def forget(self, name: str) -> list[str]:
        """Stop managing ``name`` without deleting anything: its record leaves the state file, and Shipyard's tags
        leave its resources, so ``status --reconcile`` does not take it back (what now owns it, a CloudFormation
        stack or Terraform, keeps it whole); what was untagged."""
        record = self.record(name)
        untagged: list[str] = self._handover(record, "forget").forget(record)
        self.state.remove(name)
        return untagged

    def _handover(self, record: Deployment, what: str) -> Any:
        target = self.target(record.target)
        if not hasattr(target, what):
            raise DeployError(
                f"{record.name} runs on {record.target}: `shipyard {what}` hands over a sagemaker deployment's AWS "
                f"resources; a {record.target} deployment has none (`shipyard cleanup {record.name}` removes it)"
            )
        return target

    def expired(self) -> list[str]:
        now = now_utc()
        return [r.name for r in self.state.all() if r.expires_at and (parse_time(r.expires_at) or now) <= now]


def _row(record: Deployment, table: PriceTable | None = None) -> StatusRow:
    created = parse_time(record.created_at) or now_utc()
    age = now_utc() - created
    table = table or prices()
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
        price_source=table.described if record.target == "sagemaker" else None,
        guards=_guard_lines(record),
        ended_by=record.details.ended_by,
    )


def _guard_lines(record: Deployment) -> tuple[str, ...]:
    """One line per spend guard the record holds (deploy/sagemaker/guards.py), from the record alone."""
    out: list[str] = []
    schedule, expires = record.one("ttl-schedule"), parse_time(record.expires_at)
    if schedule and expires is not None:
        out.append(f"TTL: EventBridge Scheduler deletes the endpoint at {format_utc(expires)} ({schedule})")
    alarm, options = record.one("idle-alarm"), record.options
    if alarm and options is not None and options.idle is not None:
        topic = record.one("sns-topic")
        told = f"notifies {options.notify or topic}" if topic else "notifies nobody"
        line = f"idle {format_duration(int(options.idle.total_seconds()))}: alarm {alarm} {told}"
        rule, machine = record.one("idle-rule"), record.one("state-machine")
        if rule and machine:
            line += f"; deletes via EventBridge rule {rule} → Step Functions {machine.rsplit(':', 1)[-1]}"
        out.append(line)
    return tuple(out)


def runtime_url(region: str, endpoint: str) -> str:
    """Where InvokeEndpoint sends an endpoint's requests (what a caller outside Shipyard signs and POSTs to)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://runtime.sagemaker.{region}.{suffix}/endpoints/{endpoint}/invocations"


def _new_record(options: DeployOptions) -> Deployment:
    now = now_utc()
    expires = options.expires_at(now)
    return Deployment(
        name=options.name,
        target=options.target,
        status=CREATING,
        source=options.source,
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
        expires_at=expires.isoformat() if expires else None,
        options=options,
    )


def _updated(record: Deployment, source: str, changes: dict[str, Any]) -> DeployOptions:
    """The deployed options with ``changes``; a change between instances and serverless drops the other kind."""
    kept: dict[str, Any] = {"source": source, "env": {}, "region": changes.get("region", record.region)}
    if "serverless" in changes:  # instances → serverless (which bills nothing idle: no idle guard)
        kept.update(
            instance_type=DEFAULT_INSTANCE_TYPE, instance_count=1, autoscale=None, idle=None, idle_action="notify"
        )
    elif "instance_type" in changes or "instance_count" in changes:  # serverless → instances
        kept["serverless"] = None
    if record.options is None:  # rebuilt from AWS without its options: the defaults
        return DeployOptions(name=record.name, target=record.target, **{**kept, **changes})
    return record.options.replace(**{**kept, **changes})
