"""The ``sagemaker`` target: the whole AWS path, through the same boto3 calls in tests (moto) and on AWS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shipyard.client.sagemaker import SageMakerTransport
from shipyard.client.transport import HTTPTransport, Transport
from shipyard.cloud.session import Aws, deployment_tags
from shipyard.cloud.signing import SigV4Signer
from shipyard.deploy.asynchronous import AsyncChannel
from shipyard.deploy.base import (
    DELETED,
    FAILED,
    CleanupReport,
    DeployRun,
    Health,
    Plan,
    Reporter,
    Save,
    SilentReporter,
)
from shipyard.deploy.cost import prices_for
from shipyard.deploy.expose import ExposeOptions, Exposure, not_exposed
from shipyard.deploy.images import ImageService, is_bundle_source
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.sagemaker import alarms, create, guards, health, update
from shipyard.deploy.sagemaker import cleanup as cleanup_steps
from shipyard.deploy.sagemaker import expose as expose_steps
from shipyard.deploy.sagemaker import forget as forget_steps
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import Names, new_version
from shipyard.deploy.state import Deployment, now_utc, parse_time
from shipyard.errors import (
    AwsUnreachable,
    CredentialsError,
    DeployError,
    ShipyardError,
    SpecError,
)
from shipyard.pricing import PriceTable, cloudwatch_prices
from shipyard.settings import Settings
from shipyard.units import format_duration, format_utc

__all__ = ["SageMakerTarget"]


class SageMakerTarget:
    name = "sagemaker"

    def __init__(
        self,
        images: ImageService | None = None,
        *,
        aws: Aws | None = None,
        poll_s: float = 15.0,
        profile: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._images = images
        self._aws = aws
        self.poll_s = poll_s
        self.profile = profile
        self._settings = settings

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    # -- plumbing -----------------------------------------------------------------------------------------
    def aws(self, region: str | None) -> Aws:
        if self._aws is None or (region and self._aws.region != region):
            self._aws = Aws(region, profile=self.profile)
        return self._aws

    def context(self, name: str, region: str | None, *, expires_at: str | None = None) -> Context:
        return Context(self.aws(region), Names(name), deployment_tags(name, expires_at))

    def registry(self, options: DeployOptions) -> str | None:
        """Where images go instead of ECR's host: the option, else ``Settings.ecr_registry``."""
        return options.registry_override or self.settings.ecr_registry

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from shipyard.deploy.engine_images import EngineImages

            self._images = EngineImages()
        return self._images

    def _plan_aws(self, region: str | None) -> Aws | None:
        """The AWS view of a dry run: quick to give up when AWS cannot be reached; None without a region."""
        if self._aws is not None:  # given by the caller (tests, the Python API): used as it is
            return self.aws(region)
        try:
            return Aws(region, profile=self.profile, connect_timeout_s=5, max_attempts=2)
        except SpecError:  # no region configured anywhere
            return None

    # -- deploy ---------------------------------------------------------------------------------------------
    def plan(self, options: DeployOptions) -> Plan:
        """What ``deploy`` would create, with list-price estimates; read-only calls at most.

        Needs neither credentials nor a network: with both, it runs the deploy's checks that ask AWS (who
        the credentials are, an endpoint of this name, the secrets) and stops on what they find, as a deploy
        would; without them (or without a region) it plans all the same and says what was not checked.
        """
        aws = self._plan_aws(options.region)
        table = prices_for(aws.region if aws is not None else options.region, aws, self.settings)
        plan = Plan(options.name, self.name, price_label=table.described)
        checks = self._plan_checks(aws, options, plan)
        region = aws.region if aws is not None else "REGION"
        account = checks.account if checks else "ACCOUNT"
        bucket = checks.bucket if checks else (options.bucket or f"sagemaker-{region}-{account}")
        _plan_resources(plan, options, table, bucket)
        plan.notes.append("ECR storage, S3 storage and CloudWatch Logs ingestion are billed by size and are small")
        return plan

    def _plan_checks(self, aws: Aws | None, options: DeployOptions, plan: Plan) -> create.Preflight | None:
        """The deploy's checks that ask AWS, when it can be asked; what could not be checked goes in the notes."""
        unchecked = "nor an existing endpoint of this name, nor the secrets"
        if aws is None:
            plan.notes.append(
                f"credentials were not checked ({unchecked}): no AWS region given (--region, AWS_REGION or the "
                "profile's), so the names show REGION"
            )
            return None
        aws.check_region("sagemaker")
        try:
            return create.preflight(Context(aws, Names(options.name)), options)
        except (CredentialsError, AwsUnreachable) as exc:
            if exc.aws_code:  # they reached AWS, which refused them
                plan.notes.append(f"AWS refused the credentials ({unchecked} could be checked): {exc}")
            else:
                plan.notes.append(f"credentials were not checked ({unchecked}): {exc}")
        return None

    def deploy(self, run: DeployRun) -> Deployment:
        ctx = self.context(run.options.name, run.options.region, expires_at=run.record.expires_at)
        try:
            return create.deploy(
                ctx,
                run,
                self.images,
                version=new_version(now_utc()),
                poll_s=self.poll_s,
                registry=self.registry(run.options),
            )
        except ShipyardError as failure:
            self._roll_back(ctx, run, failure)
            raise

    def _roll_back(self, ctx: Context, run: DeployRun, failure: ShipyardError) -> None:
        """Remove what a failed deploy created, except its log group (the logs explain the failure)."""
        record = run.record
        record.failure = str(failure)
        if not record.resources:
            return
        run.step("deploy failed: removing what it created (the log group stays for its logs)")
        logs = [r for r in record.resources if r.kind == "log-group"]
        record.resources = [r for r in record.resources if r.kind != "log-group"]
        try:
            cleanup_steps.cleanup(ctx, record, run.saver, SilentReporter())
        except ShipyardError as exc:
            record.failure = f"{failure} (rollback stopped: {exc}; run `shipyard cleanup {record.name}`)"
        record.resources.extend(logs)
        record.touch(FAILED)
        run.save()

    def update(self, run: DeployRun) -> Deployment:
        record = run.record
        ctx = self.context(record.name, run.options.region or record.region, expires_at=record.expires_at)
        return update.update(
            ctx,
            run,
            self.images,
            version=new_version(now_utc()),
            poll_s=self.poll_s,
            registry=self.registry(run.options),
        )

    # -- afterwards ---------------------------------------------------------------------------------------
    def refresh(self, record: Deployment) -> Deployment:
        ctx = self.context(record.name, record.region)
        endpoint = record.one("endpoint")
        described = ctx.sagemaker.describe_endpoint(endpoint) if endpoint else None
        if described is None:
            record.status = DELETED if endpoint or record.status != FAILED else record.status
            if endpoint and any(record.of(kind) for kind in ("ttl-schedule", "state-machine")):
                record.details.ended_by = _ended_by(ctx, record) or record.details.ended_by
            return record
        record.status = str(described["EndpointStatus"])
        record.failure = described.get("FailureReason") or record.failure
        live = (described.get("ProductionVariants") or [{}])[0]
        if record.serverless is None and live.get("CurrentInstanceCount"):
            record.instance_count = int(live["CurrentInstanceCount"])
        return record

    def transport(
        self, record: Deployment, *, read_timeout_s: float, connections: int, target_model: str | None = None
    ) -> SageMakerTransport:
        client = self.aws(record.region).runtime_client(read_timeout_s=read_timeout_s, connections=connections)
        return SageMakerTransport(client, record.name, target_model=target_model)

    def async_channel(self, record: Deployment) -> AsyncChannel:
        """``invoke --async``: S3 and InvokeEndpointAsync (deploy/sagemaker/async_channel.py)."""
        from shipyard.deploy.sagemaker.async_channel import SageMakerAsyncChannel

        return SageMakerAsyncChannel(self.aws(record.region), record)

    def logs(self, record: Deployment, *, lines: int, follow: bool) -> Iterator[str]:
        ctx = self.context(record.name, record.region)
        group = record.one("log-group") or ctx.names.log_group
        for event in ctx.logs.tail(group, lines):
            yield _line(event.timestamp_ms, event.stream, event.message)
        if follow:
            last = ctx.logs.tail(group, 1)
            since = last[-1].timestamp_ms + 1 if last else None
            for event in ctx.logs.follow(group, since_ms=since, interval_s=max(self.poll_s / 5, 1.0)):
                yield _line(event.timestamp_ms, event.stream, event.message)

    def cleanup(self, record: Deployment, save: Save, reporter: Reporter, *, keep_artifacts: bool) -> CleanupReport:
        if not record.region:
            raise DeployError(f"the record of {record.name} has no region; run `shipyard status --reconcile`")
        ctx = self.context(record.name, record.region)
        return cleanup_steps.cleanup(ctx, record, save, reporter, keep_artifacts=keep_artifacts)

    # -- the public API (deploy/sagemaker/expose.py) ------------------------------------------------------
    def expose(
        self, record: Deployment, options: ExposeOptions, save: Save, reporter: Reporter
    ) -> tuple[Exposure, str | None]:
        return expose_steps.expose(self.context_of(record), record, options, save, reporter)

    def unexpose(self, record: Deployment, save: Save, reporter: Reporter) -> list[str]:
        return expose_steps.unexpose(self.context_of(record), record, save, reporter)

    def api_transport(self, record: Deployment, *, connections: int) -> Transport:
        """The public API as its callers reach it: with the key (api-key), SigV4-signed (iam), or plain."""
        exposure = _exposure(record)
        headers: dict[str, str] = {}
        if exposure.auth == "api-key":
            key = self.api_key(record)
            if key is None:
                raise DeployError(
                    f"the API key of {record.name} is gone from Secrets Manager ({exposure.key_ref}): "
                    f"`shipyard unexpose {record.name}` and expose it again"
                )
            headers["x-api-key"] = key
        sign = SigV4Signer(self.aws(record.region)) if exposure.auth == "iam" else None
        return HTTPTransport(exposure.url, exact=True, headers=headers, sign=sign, max_connections=connections)

    def api_key(self, record: Deployment) -> str | None:
        """The key of an ``--auth api-key`` API, read from Secrets Manager (None for the other auths)."""
        exposure = _exposure(record)
        if exposure.auth != "api-key" or not exposure.key_ref:
            return None
        return self.context_of(record).secrets.read(exposure.key_ref)

    def context_of(self, record: Deployment) -> Context:
        """The Context of an existing deployment: its region's AWS, its names and tags (export, forget, expose)."""
        if not record.region:
            raise DeployError(f"the record of {record.name} has no region; run `shipyard status --reconcile`")
        return self.context(record.name, record.region, expires_at=record.expires_at)

    # -- handing it over (export, forget) -------------------------------------------------------------
    def export(self, record: Deployment, format: str, directory: Path) -> list[Path]:
        """Write ``record``'s live resources as ``format`` (cloudformation, cdk, terraform) into ``directory``."""
        from shipyard.deploy.export import export

        return export(self.context_of(record), record, format, directory)

    def forget(self, record: Deployment) -> list[str]:
        """Remove Shipyard's tags from ``record``'s resources (deleting nothing); what was untagged."""
        return forget_steps.untag(self.context_of(record), record)

    # -- health (issue 15: being built) ---------------------------------------------------------------
    def health(self, record: Deployment) -> Health:
        """Each recorded alarm's state and the last hour's figures (deploy/sagemaker/health.py)."""
        return health.read(self.context(record.name, record.region), record, now_utc())

    def tune_alarms(self, record: Deployment) -> str | None:
        """After a bench: the ModelLatency alarm re-put with the threshold from ``record.bench``; what changed."""
        if not record.of("alarm"):
            return None
        ctx = self.context(record.name, record.region, expires_at=record.expires_at)
        return alarms.tune(ctx, record, ctx.tag_list)


def _ended_by(ctx: Context, record: Deployment) -> str | None:
    """What deleted the endpoint when a guard of the record did (Shipyard's own cleanup drops the guards before
    the endpoint, so a record that still holds one and no endpoint was ended by it): the idle state machine when
    its last execution deleted it (its output keeps the alarm's state ALARM) before the TTL, else the TTL
    schedule once its time has passed, else a running idle execution; None when none did."""
    machine = record.one("state-machine")
    execution = ctx.stepfunctions.last_execution(machine) if machine else None
    status = execution.get("status") if execution else None
    output = execution.get("output") if execution else None
    stopped = execution.get("stopDate") if execution else None
    idle_at = stopped if status == "SUCCEEDED" and isinstance(output, dict) and output.get("state") == "ALARM" else None
    schedule, expires = record.one("ttl-schedule"), parse_time(record.expires_at)
    ttl_passed = schedule is not None and expires is not None and expires <= now_utc()
    name = execution.get("name") if execution else None
    if isinstance(idle_at, datetime) and (not ttl_passed or expires is None or idle_at < expires):
        return (
            f"its idle state machine {ctx.names.idle} deleted the endpoint at {format_utc(idle_at)} (execution {name}: "
            f"the alarm {ctx.names.idle} saw no invocation for its whole window)"
        )
    if ttl_passed and expires is not None:
        return f"its TTL schedule {schedule} deleted the endpoint at {format_utc(expires)}"
    if status == "RUNNING":
        return f"its idle state machine {ctx.names.idle} is deleting the endpoint (execution {name})"
    return None


def _exposure(record: Deployment) -> Exposure:
    if record.exposure is None:
        raise DeployError(not_exposed(record.name))
    return record.exposure


def _plan_resources(plan: Plan, options: DeployOptions, table: PriceTable, bucket: str) -> None:
    names = Names(options.name)
    version = new_version(now_utc())
    if options.role_arn:
        plan.add("IAM role", options.role_arn, "given with --role-arn; not created", 0.0)
    else:
        plan.add("IAM role", f"{names.role} (path /shipyard/)", "least-privilege inline policy", 0.0)
    plan.add("CloudWatch log group", names.log_group, f"retention {options.log_retention_days} days", None)
    plan.add("ECR repository", names.repository, "scan on push, immutable tags, lifecycle policy", None)
    plan.add("ECR image", f"{names.repository}:{version}", "single-platform linux/amd64", None)
    if is_bundle_source(options.source) and options.serverless is None:
        size = _size_mb(options.source)
        plan.add("S3 object", f"s3://{bucket}/{names.artifact_key(version)}", f"model.tar.gz, {size}, SSE", None)
    plan.add("SageMaker model", names.model(version), "", 0.0)
    plan.add("SageMaker endpoint config", names.endpoint_config(version), _variant(options), 0.0)
    if options.asynchronous is not None:
        from shipyard.deploy.sagemaker.asynchronous import async_paths

        output, failure = async_paths(options.asynchronous, bucket, options.name)
        per = options.asynchronous.max_concurrent
        plan.add(
            "async inference", f"{output} (errors: {failure})",
            f"up to {options.asynchronous.invocation_timeout_s} s, 1 GB a request"
            + (f"; {per} at once per instance" if per else ""),
            None,
        )  # fmt: skip
    _plan_endpoint(plan, options, table, names)
    _plan_alarms(plan, options, names)
    _plan_guards(plan, options, names)


# The guards' prices (us-east-1 list prices, 2026): EventBridge Scheduler bills invocations, $1.00 per million
# after 14 million free a month; Step Functions Standard bills state transitions, $0.025 per 1,000 after 4,000
# free a month; EventBridge delivers AWS services' events (an alarm's state change) to rules for free.
SCHEDULER_PRICE = "one invocation; $1.00 per million after 14 million free a month"
STEP_FUNCTIONS_PRICE = "up to 5 state transitions a run; $0.025 per 1,000 after 4,000 free a month"


def _plan_guards(plan: Plan, options: DeployOptions, names: Names) -> None:
    """The spend guards (deploy/sagemaker/guards.py): what each costs is next to nothing but said."""
    expires = options.expires_at(now_utc())
    if expires is None and options.idle is None:
        return
    deletes = ["TTL schedule"] if expires else []
    if expires is not None:
        plan.add("EventBridge Scheduler schedule", names.ttl_schedule,
                 f"at({format_utc(expires)}): DeleteEndpoint {names.endpoint}; {SCHEDULER_PRICE}", 0.0)  # fmt: skip
    if options.idle is not None:
        spec = guards.idle_alarm(names, options.idle)
        told = f", notifies {options.notify}" if options.notify else ""
        idle = format_duration(spec.period_s * spec.evaluation_periods)
        plan.add("CloudWatch alarm", names.idle, f"Invocations: Sum ≤ 0 for {idle} ({spec.evaluation_periods} × "
                 f"{spec.period_s} s), missing data breaching{told}", cloudwatch_prices().alarm(1))  # fmt: skip
        if options.idle_action == "delete":
            deletes.append("idle state machine")
            plan.add("EventBridge rule", names.idle, "the idle alarm going to ALARM (AWS service events: free)", 0.0)
            plan.add("Step Functions state machine", names.idle, f"STANDARD: DeleteEndpoint when still idle; "
                     f"{STEP_FUNCTIONS_PRICE}", 0.0)  # fmt: skip
    if deletes:
        plan.add("IAM role", f"{names.guard_role} (path /shipyard/)",
                 f"the {' and '.join(deletes)} delete this endpoint only", 0.0)  # fmt: skip


def _plan_alarms(plan: Plan, options: DeployOptions, names: Names) -> None:
    """The alarms, topic and dashboard (deploy/sagemaker/alarms.py), at CloudWatch's list prices."""
    if not options.alarms:
        plan.notes.append("--no-alarms: no CloudWatch alarms or dashboard")
        return
    cost = cloudwatch_prices()
    shape = alarms.Shape(options.serverless is not None, options.instance_type, None)
    for watch in alarms.alarm_specs(names, shape):
        metrics = watch.spec.metric_count
        billed = f"; {metrics} metrics (metric math)" if metrics > 1 else ""
        plan.add("CloudWatch alarm", watch.spec.name, f"{watch.spec.metric}: {watch.rule}{billed}", cost.alarm(metrics))
    if options.notify and not options.notify.startswith("arn:"):
        plan.add("SNS topic", names.topic, f"email subscription {options.notify} (first 1,000 emails/month free)", 0.0)
    elif options.notify:
        plan.add("SNS topic", options.notify, "given with --notify; not created", 0.0)
    plan.add("CloudWatch dashboard", names.dashboard, f"free within the account's first {cost.free_dashboards}",
             cost.dashboard_monthly)  # fmt: skip
    plan.notes.append(f"CloudWatch prices of {cost.as_of} ({cost.source}); the free tier (10 alarm metrics, "
                      f"{cost.free_dashboards} dashboards per account) is not counted")  # fmt: skip


def _plan_endpoint(plan: Plan, options: DeployOptions, table: PriceTable, names: Names) -> None:
    if options.serverless is not None:
        per_s = table.serverless_per_second(options.serverless.memory_mb)
        plan.add("SageMaker endpoint", names.endpoint, f"serverless: ${per_s:.7f} per second of inference", 0.0)
        plan.notes.append("serverless endpoints cost nothing while idle; you pay per second of inference")
    else:
        monthly = table.monthly(options.instance_type, options.instance_count)
        plan.add("SageMaker endpoint", names.endpoint, _variant(options), monthly)
        if monthly is None:
            plan.notes.append(f"no list price for {options.instance_type} in the table ({table.label})")
    if options.autoscale is not None:
        top = table.monthly(options.instance_type, options.autoscale.maximum)
        plan.add(
            "autoscaling policy",
            names.scaling_policy,
            f"{options.autoscale.minimum}–{options.autoscale.maximum} instances, target "
            f"{options.autoscale.target_per_minute:g} invocations/instance/minute"
            + (f"; up to ${top:,.0f}/month at MAX" if top else ""),
            0.0,
        )


def _variant(options: DeployOptions) -> str:
    if options.serverless is not None:
        return f"serverless {options.serverless.memory_mb} MB × {options.serverless.max_concurrency} concurrent"
    return f"{options.instance_count} × {options.instance_type}"


def _size_mb(source: str) -> str:
    path = Path(source)
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def _line(timestamp_ms: int, stream: str, message: str) -> str:
    stamp = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%H:%M:%S")
    return f"{stamp} {stream.split('/')[-1][:12]} {message}"
