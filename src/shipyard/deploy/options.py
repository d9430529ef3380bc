"""What to deploy and how: one :class:`DeployOptions`, built by the CLI and by :func:`shipyard.deploy` alike.

It is validated once, when it is made (``__post_init__``): every check that can be made without AWS (names,
instance types, serverless limits, autoscaling bounds, TTL, environment). The targets add the ones that need
AWS (credentials, region access, secrets) before they create their first resource. :meth:`DeployOptions.parse`
takes the user-facing forms (``serverless="2048:10"``, ``autoscale="1:4"`` with ``max_rps``, ``ttl="2h"``,
``secrets=["VAR=name"]``, ``env=["KEY=VALUE"]`` or a mapping), the same for the command line and the Python API.

A :class:`~shipyard.errors.SpecError` names the option at fault (``option``, the field's name); the CLI shows
it as its flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shipyard.errors import SpecError
from shipyard.units import SERVERLESS_MEMORY_MB, format_duration, parse_duration, serverless_sizes

__all__ = [
    "ASYNC_MAX_PAYLOAD_MB",
    "ASYNC_MAX_TIMEOUT_S",
    "DEFAULT_INSTANCE_TYPE",
    "DEFAULT_LOG_RETENTION_DAYS",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "IDLE_ACTIONS",
    "LOG_RETENTION_DAYS",
    "ROLLOUT_KINDS",
    "TARGETS",
    "AsyncInference",
    "Autoscale",
    "DeployOptions",
    "Rollout",
    "SecretRef",
    "Serverless",
    "check_name",
    "check_notify",
    "idle_window",
    "parse_changes",
    "parse_env",
    "parse_idle",
    "parse_ttl",
    "update_budget_s",
]

TARGETS = ("local", "sagemaker")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_STARTUP_TIMEOUT_S = 600
DEFAULT_LOG_RETENTION_DAYS = 30
# The retention values CloudWatch Logs accepts (PutRetentionPolicy). Kept here, not in shipyard.cloud: the
# options are checked for every target, and the `local` one must work without boto3 (the base install).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)  # fmt: skip
# SageMaker's pattern for endpoint, endpoint-config and model names (botocore's service model).
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NAME_MAX = 63
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# --notify: an email address (the topic Shipyard creates mails it) or an existing SNS topic's ARN
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
# Variables the server or SageMaker set themselves; env must not fight them.
_RESERVED_ENV = {"SHIPYARD_SECRETS", "SAGEMAKER_BIND_TO_PORT", "SHIPYARD_MODEL_DIR", "SM_MODEL_DIR"}


def check_name(name: str) -> str:
    """A name SageMaker accepts for an endpoint (≤ 63 characters, letters, digits, inner hyphens)."""
    if not name:
        raise SpecError("the deployment needs a name", option="name")
    if len(name) > _NAME_MAX:
        raise SpecError(f"name {name!r} is {len(name)} characters; SageMaker allows at most {_NAME_MAX}", option="name")
    if not _NAME.match(name):
        raise SpecError(
            f"name {name!r} is not a valid endpoint name: use letters, digits and hyphens, starting and "
            "ending with a letter or digit (SageMaker's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$)",
            option="name",
        )
    return name


@dataclass(frozen=True)
class Serverless:
    """``MEMORY_MB:MAX_CONCURRENCY``: SageMaker Serverless Inference limits (checked when made)."""

    memory_mb: int
    max_concurrency: int

    def __post_init__(self) -> None:
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            raise SpecError(
                f"serverless memory {self.memory_mb} MB: SageMaker allows {serverless_sizes()}", option="serverless"
            )
        if not 1 <= self.max_concurrency <= 200:
            raise SpecError(
                f"serverless concurrency {self.max_concurrency}: SageMaker allows 1 to 200", option="serverless"
            )

    @classmethod
    def parse(cls, text: str) -> Serverless:
        memory, sep, concurrency = text.partition(":")
        try:
            numbers = int(memory), int(concurrency) if sep else 20
        except ValueError:
            raise SpecError(
                f"serverless {text!r}: expected MEMORY_MB:MAX_CONCURRENCY, e.g. 2048:10", option="serverless"
            ) from None
        return cls(*numbers)

    def to_json(self) -> dict[str, int]:
        return {"memory_mb": self.memory_mb, "max_concurrency": self.max_concurrency}


_ZERO_ONLY_ASYNC = (
    "autoscale MIN 0: only an asynchronous endpoint (--async) scales to zero instances; a real-time one needs "
    "at least 1 to answer"
)


@dataclass(frozen=True)
class Autoscale:
    """``MIN:MAX`` instances with the sustainable requests per second of one instance (``max_rps``).

    The target-tracking value is in invocations per instance per *minute*: ``max_rps × 0.5 × 60`` keeps
    each instance at half of what it can take, the usual safety factor.
    """

    minimum: int
    maximum: int
    max_rps: float
    safety: float = 0.5

    def __post_init__(self) -> None:
        # MIN 0 is for asynchronous endpoints only (DeployOptions refuses it for real-time ones)
        if not 0 <= self.minimum <= self.maximum or self.maximum < 1:
            raise SpecError(f"autoscale {self.minimum}:{self.maximum}: need 1 <= MIN <= MAX", option="autoscale")
        if self.maximum > 100:
            raise SpecError(
                f"autoscale MAX {self.maximum} is over 100 instances; ask for a quota and split", option="autoscale"
            )
        if not self.max_rps > 0:
            raise SpecError(f"max_rps {self.max_rps}: must be > 0", option="max_rps")

    @classmethod
    def parse(cls, text: str, max_rps: float | None, *, backlog: bool = False) -> Autoscale:
        """``MIN:MAX`` with ``max_rps``; ``backlog``: an asynchronous endpoint's, which scales on its queue
        (ApproximateBacklogSizePerInstance) and needs no ``max_rps``."""
        low, sep, high = text.partition(":")
        try:
            minimum, maximum = int(low), int(high)
        except ValueError:
            sep = ""
        if not sep:
            raise SpecError(f"autoscale {text!r}: expected MIN:MAX instance counts, e.g. 1:4", option="autoscale")
        if minimum == 0 and not backlog:
            raise SpecError(_ZERO_ONLY_ASYNC, option="autoscale")
        if max_rps is None and backlog:
            max_rps = 1.0  # not used: the policy tracks the backlog (AsyncInference.backlog_per_instance)
        if max_rps is None:
            raise SpecError(
                "autoscale needs --max-rps: the requests per second one instance sustains "
                "(measure it with `shipyard bench`); the scaling target is half of it",
                option="autoscale",
            )
        return cls(minimum, maximum, float(max_rps))

    @property
    def target_per_minute(self) -> float:
        return round(self.max_rps * self.safety * 60, 2)


@dataclass(frozen=True)
class SecretRef:
    """``NAME`` or ``ENV_VAR=NAME``: which Secrets Manager secret, and the variable the handler reads."""

    name: str
    env_var: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        var, sep, name = text.partition("=")
        if not sep:
            var, name = "", text
        if not _SECRET_NAME.match(name):
            raise SpecError(f"secret {text!r}: not a Secrets Manager name", option="secrets")
        var = var or re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
        if not _ENV_KEY.match(var):
            raise SpecError(f"secret {text!r}: {var!r} is not a valid environment variable name", option="secrets")
        return cls(name=name, env_var=var)

    def __str__(self) -> str:
        return f"{self.env_var}={self.name}"


def _check_env(env: Mapping[str, str]) -> None:
    for key in env:
        if not _ENV_KEY.match(key):
            raise SpecError(f"env {key!r}: not a valid variable name", option="env")
        if key in _RESERVED_ENV:
            raise SpecError(f"env {key}: set by Shipyard itself (use --secret for secrets)", option="env")


def parse_env(items: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (or a mapping), checked."""
    if isinstance(items, Mapping):
        env = dict(items)
    else:
        env = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not _ENV_KEY.match(key):
                raise SpecError(f"env {item!r}: expected KEY=VALUE with KEY a valid variable name", option="env")
            env[key] = value
    _check_env(env)
    return env


OFF = "off"  # --idle off / --ttl off on an update: remove that guard


def _off(text: object) -> bool:
    return isinstance(text, str) and text.strip().lower() == OFF


def parse_idle(text: str | timedelta | None) -> timedelta | None:
    """``--idle 4h``: how long an endpoint may go without an invocation before its alarm fires (``off``: none)."""
    if text is None or isinstance(text, timedelta):
        return text
    if _off(text):
        return None
    return parse_duration(text, option="idle", minimum_s=3600)


# --idle: the idle alarm's window (deploy/sagemaker/guards.py). CloudWatch evaluates an alarm over at most
# Period × EvaluationPeriods = 7 days (604,800 s), and at most 1 day (86,400 s) when its period is under an hour
# (PutMetricAlarm's reference); a Period is a multiple of 60 s.
IDLE_ACTIONS = ("notify", "delete")
_IDLE_MAX_S = 604_800
_IDLE_SHORT_MAX_S = 86_400
_HOUR_S = 3600


def idle_window(idle: timedelta) -> tuple[int, int]:
    """(Period, EvaluationPeriods) of the idle alarm: Period × EvaluationPeriods = ``idle`` exactly; one-hour
    periods for a whole number of hours, else the longest whole-minute period under an hour that divides it."""
    seconds = int(idle.total_seconds())
    if seconds % _HOUR_S == 0:
        return _HOUR_S, seconds // _HOUR_S
    period = next(p for p in range(_HOUR_S - 60, 0, -60) if seconds % p == 0)
    return period, seconds // period


def _check_idle(idle: timedelta) -> None:
    seconds = idle.total_seconds()
    if seconds < _HOUR_S:
        raise SpecError(f"idle {format_duration(int(seconds))}: at least 1h", option="idle")
    if seconds % 60:
        raise SpecError(
            f"idle {format_duration(int(seconds))}: give whole minutes (CloudWatch's periods are multiples of 60 s)",
            option="idle",
        )
    if seconds > _IDLE_MAX_S:
        raise SpecError(
            f"idle {format_duration(int(seconds))}: CloudWatch evaluates an alarm over at most 7 days "
            "(Period × EvaluationPeriods ≤ 604,800 s): give 7d or less, or a --ttl for a fixed end",
            option="idle",
        )
    if seconds % _HOUR_S and seconds > _IDLE_SHORT_MAX_S:
        raise SpecError(
            f"idle {format_duration(int(seconds))}: beyond a day CloudWatch needs periods of an hour or more (with "
            "shorter ones it evaluates at most 1 day): give whole hours",
            option="idle",
        )


def parse_ttl(text: str | timedelta | None) -> timedelta | None:
    """``2h`` (s, m, h, d, w); a timedelta as it is; ``off``: none."""
    if not text or _off(text):
        return None
    if isinstance(text, timedelta):
        return text
    return parse_duration(text, option="ttl", minimum_s=60)


# SageMaker's deployment guardrails (UpdateEndpoint's DeploymentConfig.BlueGreenUpdatePolicy), their limits from
# botocore's service model: WaitIntervalInSeconds and TerminationWaitInSeconds 0-3600, a CapacitySize at least 1,
# MaximumExecutionTimeoutInSeconds 600-28800; and the API reference's: CanarySize at most 50% of the variant's
# instances, LinearStepSize 10-50%.
ROLLOUT_KINDS = ("CANARY", "LINEAR", "ALL_AT_ONCE")
_WAIT_MAX_S = 3600
_EXECUTION_MAX_S = 28800
# Instance families SageMaker hosts a multi-model endpoint on only with its NVIDIA Triton container (GPU ones;
# Inferentia and Trainium too): "Multi-model endpoints for GPU backed instances are currently supported only with
# SageMaker AI's NVIDIA Triton Inference Server container" (mms-container-apis).
_ACCELERATED = ("ml.g", "ml.p", "ml.inf", "ml.trn")
# Before the first traffic step SageMaker provisions the new fleet: the instances, then the container's start.
PROVISION_S = 1800
_SIZE_PCT = {"CANARY": (1, 50), "LINEAR": (10, 50)}
_SIZE_FIELD = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}
_SIZED = re.compile(r"^\s*(\d+)\s*%\s*:\s*(\S+)\s*$")


def _rollout_option(kind: str) -> str:
    """The option (and, through the CLI, the flag) a rollout of ``kind`` came from: canary, linear, all_at_once."""
    return kind.lower()


@dataclass(frozen=True)
class Rollout:
    """How an update shifts traffic to the new fleet: ``CANARY`` (``size_pct`` of its capacity first, then the
    rest after ``wait_s``), ``LINEAR`` (``size_pct`` more every ``wait_s``) or ``ALL_AT_ONCE``.

    ``size_pct`` is a percentage of the new fleet's capacity (``CapacitySize`` ``CAPACITY_PERCENT``, at least 1 in
    botocore's model); SageMaker's API reference bounds it further: a canary at most 50% of the variant's
    instances, a linear step 10-50%.
    """

    kind: str
    size_pct: int | None = None
    wait_s: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ROLLOUT_KINDS:
            raise SpecError(f"rollout {self.kind!r}: choose one of {', '.join(ROLLOUT_KINDS)}", option="rollout")
        option = _rollout_option(self.kind)
        if self.kind == "ALL_AT_ONCE":
            if self.size_pct is not None:
                raise SpecError(f"{option} moves all traffic in one step: it takes no size", option=option)
        else:
            low, high = _SIZE_PCT[self.kind]
            if self.size_pct is None or not low <= self.size_pct <= high:
                raise SpecError(
                    f"{option} size {self.size_pct}%: SageMaker takes {low}% to {high}% of the new fleet's capacity "
                    f"for a {option} step (TrafficRoutingConfig {_SIZE_FIELD[self.kind]}, CAPACITY_PERCENT)",
                    option=option,
                )
        if not 0 <= self.wait_s <= _WAIT_MAX_S:
            raise SpecError(
                f"{option} wait {self.wait_s} s: SageMaker waits 0 to {_WAIT_MAX_S} s between steps "
                "(WaitIntervalInSeconds)",
                option=option,
            )

    @classmethod
    def parse(cls, kind: str, text: str | None = None) -> Rollout:
        """``CANARY``/``LINEAR`` with ``"10%:5m"`` (a percent of the new fleet's capacity, the wait after each
        step: s, m, h); ``ALL_AT_ONCE`` with no text."""
        option = _rollout_option(kind)
        if kind == "ALL_AT_ONCE" or text is None:
            return cls(kind)
        match = _SIZED.match(text)
        if not match:
            raise SpecError(
                f"{option} {text!r}: expected PERCENT%:WAIT, e.g. 10%:5m (a percent of the new fleet's capacity, "
                "then how long to watch it)",
                option=option,
            )
        wait = parse_duration(match.group(2), option=option)
        return cls(kind, int(match.group(1)), int(wait.total_seconds()))

    @property
    def steps(self) -> int:
        """How many times traffic moves: a canary twice, linear once per step, all at once once."""
        if self.kind == "CANARY":
            return 2
        if self.kind == "LINEAR":
            return -(-100 // (self.size_pct or 100))
        return 1

    @property
    def option(self) -> str:
        return _rollout_option(self.kind)

    def label(self) -> str:
        """``canary 10%:5m``, ``linear 25%:2m``, ``all at once``."""
        if self.kind == "ALL_AT_ONCE":
            return "all at once"
        return f"{self.option} {self.size_pct}%:{format_duration(self.wait_s)}"


def update_budget_s(options: DeployOptions) -> int:
    """The longest a guarded update may take: the new fleet's provisioning and start, every traffic step's
    wait, the final bake (SageMaker's MaximumExecutionTimeoutInSeconds is this, within 600-28800)."""
    rollout = options.rollout or Rollout("ALL_AT_ONCE")
    return options.startup_timeout_s + PROVISION_S + rollout.steps * rollout.wait_s + (options.bake_s or 0)


def check_notify(notify: str | None) -> str | None:
    """``--notify``: an email address or an SNS topic ARN (``arn:aws:sns:REGION:ACCOUNT:NAME``)."""
    if notify is None or _EMAIL.match(notify) or _TOPIC_ARN.match(notify):
        return notify
    raise SpecError(
        f"notify {notify!r}: give an email address (a topic is created and mails it) or an SNS topic ARN "
        "(arn:aws:sns:REGION:ACCOUNT:NAME)",
        option="notify",
    )


def check_instance_type(instance_type: str) -> None:
    """The instance types SageMaker hosting accepts, from botocore's service model (no AWS call)."""
    from shipyard.cloud.catalog import hosting_instance_types  # the aws extra; a CloudError says so without it

    known = hosting_instance_types()
    if instance_type not in known:
        close = difflib.get_close_matches(instance_type, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (types look like ml.m5.large)"
        raise SpecError(
            f"instance_type {instance_type!r} is not a SageMaker hosting instance type{hint}", option="instance_type"
        )


# Asynchronous inference (AsyncInferenceConfig): a request's payload up to 1 GB through S3, processed for up to
# an hour (InvokeEndpointAsync's InvocationTimeoutSeconds, 1-3600 s); MaxConcurrentInvocationsPerInstance 1-1000.
ASYNC_MAX_TIMEOUT_S = 3600
ASYNC_MAX_PAYLOAD_MB = 1024
_ASYNC_MAX_CONCURRENT = 1000
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True)
class AsyncInference:
    """An asynchronous endpoint's settings: where answers (``output_path``) and errors (``failure_path``) go,
    by default ``s3://BUCKET/async/NAME/output`` and ``.../failure`` (``local``: the deployment's directory);
    the SNS topics told of each (an ARN or a name in the region); requests one instance works on at once;
    the container's time limit per request (``SAGEMAKER_MODEL_SERVER_TIMEOUT``, up to 3600 s); the queue
    length per instance autoscaling keeps (``ApproximateBacklogSizePerInstance``)."""

    output_path: str | None = None
    failure_path: str | None = None
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent: int | None = None
    invocation_timeout_s: int = ASYNC_MAX_TIMEOUT_S
    backlog_per_instance: float = 5.0

    def __post_init__(self) -> None:
        for option, uri in (("async_output", self.output_path), ("async_failure", self.failure_path)):
            if uri is not None and not _S3_URI.match(uri):
                raise SpecError(f"{option} {uri!r}: an S3 URI, s3://BUCKET/PREFIX", option=option)
        for option, topic in (("notify_success", self.success_topic), ("notify_error", self.error_topic)):
            if topic is not None and not (_TOPIC_ARN.match(topic) or _TOPIC_NAME.match(topic)):
                raise SpecError(
                    f"{option} {topic!r}: an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME) or a topic name",
                    option=option,
                )
        if self.max_concurrent is not None and not 1 <= self.max_concurrent <= _ASYNC_MAX_CONCURRENT:
            raise SpecError(
                f"max_concurrent {self.max_concurrent}: SageMaker allows 1 to {_ASYNC_MAX_CONCURRENT} "
                "(MaxConcurrentInvocationsPerInstance)",
                option="max_concurrent",
            )
        if not 1 <= self.invocation_timeout_s <= ASYNC_MAX_TIMEOUT_S:
            raise SpecError(
                f"invocation_timeout {self.invocation_timeout_s}: asynchronous inference allows 1 to "
                f"{ASYNC_MAX_TIMEOUT_S} seconds a request",
                option="invocation_timeout",
            )
        if not self.backlog_per_instance > 0:
            raise SpecError(f"backlog_per_instance {self.backlog_per_instance}: must be > 0", option="autoscale")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DeployOptions:
    """Everything a target needs to create an endpoint; checked when made (a bad one raises :class:`SpecError`).

    Build it with keyword arguments of the typed values, or with :meth:`parse` from the user-facing forms.
    """

    source: str
    name: str
    target: str = "local"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    serverless: Serverless | None = None
    autoscale: Autoscale | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretRef, ...] = ()
    data_capture_pct: int | None = None
    startup_timeout_s: int = DEFAULT_STARTUP_TIMEOUT_S
    region: str | None = None
    role_arn: str | None = None
    ttl: timedelta | None = None
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    bucket: str | None = None
    # Where images are pushed instead of the ECR host (a registry on 127.0.0.1 in tests); recorded in ECR.
    # Settings.ecr_registry (SHIPYARD_ECR_REGISTRY) when not given.
    registry_override: str | None = None
    # a prebuilt image for the bundle (``shipyard build`` output) instead of building one
    image: str | None = None
    # local target
    port: int | None = None
    engine: str | None = None
    base_image: str | None = None
    workers: int | None = None
    # sagemaker, an update only (not kept in the record): how traffic moves to the new fleet, and how long
    # SageMaker watches the alarms with all traffic on it before it drops the old one (TerminationWaitInSeconds)
    rollout: Rollout | None = None
    bake_s: int | None = None
    # sagemaker: CloudWatch alarms and a dashboard (deploy/sagemaker/alarms.py); who the alarms notify
    alarms: bool = True
    notify: str | None = None
    # sagemaker: the spend guards that run in AWS (deploy/sagemaker/guards.py): an alarm on zero Invocations for
    # ``idle``, which notifies (``notify``) or, with ``idle_action="delete"``, also deletes the endpoint
    idle: timedelta | None = None
    idle_action: str = "notify"
    # asynchronous inference (``deploy --async``): requests queued, answers written to S3 (or, local, a directory)
    asynchronous: AsyncInference | None = None
    # a multi-model endpoint (Mode: MultiModel): ``source`` is the models' directory or S3 prefix
    # (deploy/multimodel.py), each model picked per request with TargetModel
    multi_model: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        check_notify(self.notify)
        _check_env(self.env)
        self._check_ranges()
        self._check_sizes()
        self._check_rollout()
        self._check_alarms()
        self._check_guards()
        self._check_async()
        self._check_multi_model()
        if self.target == "sagemaker":
            check_instance_type(self.instance_type)
        env_names = [s.env_var for s in self.secrets]
        if len(set(env_names)) != len(env_names) or set(env_names) & set(self.env):
            raise SpecError("two secrets/env settings use the same environment variable", option="secrets")

    def _check_ranges(self) -> None:
        if self.target not in TARGETS:
            raise SpecError(f"target {self.target!r}: choose one of {', '.join(TARGETS)}", option="target")
        if not 1 <= self.instance_count <= 100:
            raise SpecError(f"instance_count {self.instance_count}: between 1 and 100", option="instance_count")
        if not 60 <= self.startup_timeout_s <= 3600:
            raise SpecError(
                f"startup_timeout_s {self.startup_timeout_s}: SageMaker allows 60 to 3600 seconds "
                "(ContainerStartupHealthCheckTimeoutInSeconds)",
                option="startup_timeout_s",
            )
        if self.data_capture_pct is not None and not 0 <= self.data_capture_pct <= 100:
            raise SpecError(
                f"data_capture_pct {self.data_capture_pct}: a percentage from 0 to 100", option="data_capture_pct"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SpecError(
                f"log_retention_days {self.log_retention_days}: CloudWatch accepts "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))} days",
                option="log_retention_days",
            )

    def _check_sizes(self) -> None:
        if self.serverless is not None:
            if self.autoscale is not None:
                raise SpecError(
                    "serverless scales by itself: drop --autoscale (its limit is MAX_CONCURRENCY)", option="autoscale"
                )
            if self.data_capture_pct:
                raise SpecError(
                    "data_capture_pct is not available on serverless endpoints (SageMaker's limit)",
                    option="data_capture_pct",
                )
            if self.instance_count != 1 or self.instance_type != DEFAULT_INSTANCE_TYPE:
                raise SpecError("serverless has no instances: drop instance_type/instance_count", option="serverless")
        if self.autoscale is not None and not self.autoscale.minimum <= self.instance_count <= self.autoscale.maximum:
            raise SpecError(
                f"instance_count {self.instance_count} is outside --autoscale "
                f"{self.autoscale.minimum}:{self.autoscale.maximum}",
                option="instance_count",
            )

    def _check_async(self) -> None:
        """Asynchronous endpoints run on instances (never serverless); only they may scale to 0 instances."""
        if self.asynchronous is None:
            if self.autoscale is not None and self.autoscale.minimum == 0:
                raise SpecError(_ZERO_ONLY_ASYNC, option="autoscale")
            return
        if self.serverless is not None:
            raise SpecError(
                "serverless endpoints do not take asynchronous inference (SageMaker's limit): drop --serverless "
                "(an --async endpoint scales to zero with --autoscale 0:N) or --async",
                option="serverless",
            )

    def _check_alarms(self) -> None:
        """``notify`` and ``--no-alarms`` say something of CloudWatch alarms, which only sagemaker deployments get."""
        if self.target == "sagemaker":
            return
        for option, given in (("notify", self.notify is not None), ("alarms", not self.alarms)):
            if given:
                raise SpecError(
                    f"{option} is for sagemaker deployments (their CloudWatch alarms); the {self.target} target has "
                    f"none: `shipyard status NAME` shows its traffic and latency",
                    option=option,
                )

    def _check_guards(self) -> None:
        """``idle``/``idle_action``: sagemaker only (a CloudWatch alarm on its Invocations), within CloudWatch's
        evaluation limits, with someone to tell or something to do; never on serverless (nothing to save)."""
        if self.idle_action not in IDLE_ACTIONS:
            raise SpecError(
                f"idle_action {self.idle_action!r}: choose one of {', '.join(IDLE_ACTIONS)}", option="idle_action"
            )
        given = {"idle": self.idle is not None, "idle_action": self.idle_action != "notify"}
        wrong = [option for option, g in given.items() if g]
        if self.target != "sagemaker" and wrong:
            option = wrong[0]
            raise SpecError(
                f"{option} is for sagemaker deployments (a CloudWatch alarm on the endpoint's Invocations); the "
                f"{self.target} target bills nothing idle: stop it with `shipyard cleanup NAME`",
                option=option,
            )
        if self.idle is None:
            if given["idle_action"]:
                raise SpecError(
                    "idle_action delete needs --idle DURATION: how long without an invocation before the endpoint "
                    "is deleted",
                    option="idle_action",
                )
            return
        _check_idle(self.idle)
        if self.serverless is not None:
            raise SpecError(
                "idle: a serverless endpoint bills only the seconds it serves, nothing while idle, so there is "
                "nothing for an idle guard to save: drop --idle (--ttl still ends it at a fixed time)",
                option="idle",
            )
        if self.idle_action == "notify" and self.notify is None:
            raise SpecError(
                f"idle {format_duration(int(self.idle.total_seconds()))} notifies nobody: give --notify EMAIL|SNS_ARN, "
                "or --idle-action delete",
                option="idle",
            )

    def _check_rollout(self) -> None:
        """The guardrails of an update: sagemaker only, within SageMaker's limits, none that serverless lacks."""
        if self.rollout is None and self.bake_s is None:
            return
        option = self.rollout.option if self.rollout is not None else "bake_s"
        if self.target != "sagemaker":
            raise SpecError(
                f"{option} is for sagemaker updates: SageMaker shifts traffic between its old and new fleets; the "
                f"{self.target} target replaces its one container at once, with nothing to shift or watch",
                option=option,
            )
        if self.bake_s is not None and not 0 <= self.bake_s <= _WAIT_MAX_S:
            raise SpecError(
                f"bake_s {self.bake_s}: SageMaker bakes 0 to {_WAIT_MAX_S} s (TerminationWaitInSeconds)",
                option="bake_s",
            )
        if self.serverless is not None and self.rollout is not None and self.rollout.kind != "ALL_AT_ONCE":
            raise SpecError(
                f"{option} moves traffic in steps of the new fleet's instance capacity; a serverless endpoint has "
                "no instances to step through: use --all-at-once (with --bake) or none",
                option=option,
            )
        if update_budget_s(self) > _EXECUTION_MAX_S:
            raise SpecError(
                f"{option}: the update would take up to {update_budget_s(self)} s (start, every step's wait, the "
                f"bake); SageMaker stops an update after {_EXECUTION_MAX_S} s (MaximumExecutionTimeoutInSeconds): "
                "wait less per step or take bigger steps",
                option=option,
            )

    def _check_multi_model(self) -> None:
        if not self.multi_model:
            return
        if self.serverless is not None:
            raise SpecError(
                "multi-model endpoints run on instances only: SageMaker Serverless Inference does not host them "
                "(drop --serverless, or deploy each model on its own)",
                option="serverless",
            )
        if self.asynchronous is not None:
            raise SpecError(
                "a multi-model endpoint answers InvokeEndpoint only: SageMaker's asynchronous inference hosts one "
                "model (drop --async, or deploy the model on its own with --async)",
                option="async_inference",
            )
        if self.instance_type.startswith(_ACCELERATED):
            raise SpecError(
                f"instance_type {self.instance_type}: SageMaker hosts multi-model endpoints on GPU (and Inferentia, "
                "Trainium) instances only with its NVIDIA Triton Inference Server container; this image is a CPU "
                "one: choose a CPU instance type (ml.m5.large, ml.c5.xlarge, …) or deploy each model on its own",
                option="instance_type",
            )
        if self.source.startswith("s3://"):
            if self.target == "local":
                raise SpecError(
                    "the local target serves a multi-model endpoint from a directory: --multi-model DIR",
                    option="multi_model",
                )
            if not self.source.endswith("/"):
                raise SpecError(
                    f"--multi-model {self.source}: an S3 prefix ends with / (SageMaker's ModelDataUrl of a "
                    "multi-model endpoint is the prefix every TargetModel is found under)",
                    option="multi_model",
                )

    @classmethod
    def parse(cls, source: str, name: str, **values: Any) -> DeployOptions:
        """Options from user-facing values (see :func:`parse_changes`); the ones not given take their defaults."""
        return cls(source=source, name=name, **parse_changes(**values))

    def replace(self, **changes: Any) -> DeployOptions:
        """A copy with ``changes`` (typed values), checked again as a whole."""
        return dataclasses.replace(self, **changes)

    def expires_at(self, now: datetime) -> datetime | None:
        return now + self.ttl if self.ttl else None

    # -- the state file keeps these, once: never env values (their names are kept) or secret values ------
    def to_json(self) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in _NOT_KEPT or value is None:
                continue
            if isinstance(value, Serverless | Autoscale | AsyncInference):
                value = dataclasses.asdict(value)
            elif item.name == "secrets":
                value = [str(s) for s in value]
            elif isinstance(value, timedelta):  # idle: as --idle takes it ("4h")
                value = format_duration(int(value.total_seconds()))
            kept[item.name] = value
        return kept

    @classmethod
    def from_json(cls, data: Mapping[str, Any], **identity: Any) -> DeployOptions:
        """What :meth:`to_json` kept (or the ``details["spec"]`` of an older state file), with ``identity``
        (source, name, target, region) from the record."""
        known = {f.name for f in dataclasses.fields(cls)} - _NOT_KEPT
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known and v is not None}
        if isinstance(values.get("serverless"), dict):
            values["serverless"] = Serverless(**values["serverless"])
        if isinstance(values.get("autoscale"), dict):
            values["autoscale"] = Autoscale(**values["autoscale"])
        if isinstance(values.get("asynchronous"), dict):
            values["asynchronous"] = AsyncInference(**values["asynchronous"])
        values["secrets"] = tuple(SecretRef.parse(s) for s in values.get("secrets", ()))
        if isinstance(values.get("idle"), str):
            values["idle"] = parse_idle(values["idle"])
        return cls(**{**values, **identity})


# Kept elsewhere in the record (source, name, target, region, expires_at, env_keys) or never (env values,
# a one-off prebuilt image, an update's rollout and bake).
_NOT_KEPT = {"source", "name", "target", "region", "ttl", "env", "image", "rollout", "bake_s"}
_ALIASES = {"data_capture": "data_capture_pct", "startup_timeout": "startup_timeout_s"}


def parse_changes(
    *,
    serverless: str | Serverless | None = None,
    autoscale: str | Autoscale | None = None,
    max_rps: float | None = None,
    env: Iterable[str] | Mapping[str, str] | None = None,
    secrets: Iterable[str | SecretRef] | None = None,
    ttl: str | timedelta | None = None,
    canary: str | None = None,
    linear: str | None = None,
    all_at_once: bool = False,
    bake: str | timedelta | None = None,
    idle: str | timedelta | None = None,
    async_inference: bool | AsyncInference | None = None,
    async_output: str | None = None,
    async_failure: str | None = None,
    notify_success: str | None = None,
    notify_error: str | None = None,
    max_concurrent: int | None = None,
    invocation_timeout: int | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Typed :class:`DeployOptions` values from user-facing ones, only those given (not None).

    ``serverless="2048:10"``, ``autoscale="1:4"`` with ``max_rps=20``, ``env=["KEY=VALUE"]`` or a mapping,
    ``secrets=["VAR=name"]``, ``ttl="2h"``, ``idle="4h"`` (``ttl="off"``/``idle="off"``: an update removes that
    guard); an update's ``canary="10%:5m"``, ``linear="25%:2m"`` or
    ``all_at_once=True`` (one of them) and ``bake="10m"``; ``async_inference=True`` with ``async_output``,
    ``async_failure`` (S3 URIs), ``notify_success``/``notify_error`` (SNS topics), ``max_concurrent`` and
    ``invocation_timeout`` (seconds); every other option as its field (``instance_count=2``, ...). An unknown
    name raises :class:`SpecError`.
    """
    asynchronous = _parse_async(
        async_inference, async_output, async_failure, notify_success, notify_error, max_concurrent, invocation_timeout
    )
    for alias, option in _ALIASES.items():  # the names the Python API had before they were the fields'
        if alias in values:
            values[option] = values.pop(alias)
    unknown = set(values) - {f.name for f in dataclasses.fields(DeployOptions)}
    if unknown:
        raise SpecError(f"unknown deploy option {', '.join(sorted(unknown))}", option=sorted(unknown)[0])
    typed: dict[str, Any] = {
        "serverless": Serverless.parse(serverless) if isinstance(serverless, str) else serverless,
        "autoscale": (
            Autoscale.parse(autoscale, max_rps, backlog=asynchronous is not None)
            if isinstance(autoscale, str)
            else autoscale
        ),
        "asynchronous": asynchronous,
        "env": parse_env(env) if env else None,
        "secrets": tuple(s if isinstance(s, SecretRef) else SecretRef.parse(s) for s in secrets or ()) or None,
        "ttl": parse_ttl(ttl),
        "rollout": _parse_rollout(canary, linear, all_at_once),
        "bake_s": int(parse_duration(bake, option="bake_s").total_seconds()) if bake is not None else None,
        "idle": parse_idle(idle),
        **values,
    }
    given = {key: value for key, value in typed.items() if value is not None}
    # "off" removes a guard on an update: the option is given, as None (the record's value is not kept)
    if _off(idle):
        given.update(idle=None, idle_action=given.get("idle_action", "notify"))
    if _off(ttl):
        given["ttl"] = None
    return given


def _parse_async(
    enabled: bool | AsyncInference | None,
    output: str | None,
    failure: str | None,
    success: str | None,
    error: str | None,
    max_concurrent: int | None,
    timeout_s: int | None,
) -> AsyncInference | None:
    if isinstance(enabled, AsyncInference):
        return enabled
    given = {
        "async_output": output,
        "async_failure": failure,
        "notify_success": success,
        "notify_error": error,
        "max_concurrent": max_concurrent,
        "invocation_timeout": timeout_s,
    }
    if not enabled:
        stray = [option for option, value in given.items() if value is not None]
        if stray:
            raise SpecError(f"{stray[0]} is an asynchronous endpoint's setting: add --async", option=stray[0])
        return None
    return AsyncInference(
        output_path=output,
        failure_path=failure,
        success_topic=success,
        error_topic=error,
        max_concurrent=max_concurrent,
        invocation_timeout_s=timeout_s if timeout_s is not None else ASYNC_MAX_TIMEOUT_S,
    )


def _parse_rollout(canary: str | None, linear: str | None, all_at_once: bool) -> Rollout | None:
    given: list[tuple[str, str | None]] = [(k, t) for k, t in (("CANARY", canary), ("LINEAR", linear)) if t is not None]
    if all_at_once:
        given.append(("ALL_AT_ONCE", None))
    if len(given) > 1:
        raise SpecError(
            f"{' and '.join(_rollout_option(k) for k, _ in given)} given together: choose one way to shift traffic",
            option="rollout",
        )
    return Rollout.parse(*given[0]) if given else None
