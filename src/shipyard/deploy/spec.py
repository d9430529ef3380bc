"""What to deploy and how: :class:`DeploySpec`, parsed from CLI strings and checked before anything exists.

Every check that can be made without AWS is made here (names, instance types, serverless limits, autoscaling
bounds, TTL, environment); the targets add the ones that need AWS (credentials, region access, secrets)
before they create their first resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shipyard.errors import SpecError

__all__ = [
    "DEFAULT_INSTANCE_TYPE",
    "DEFAULT_LOG_RETENTION_DAYS",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "LOG_RETENTION_DAYS",
    "TARGETS",
    "Autoscale",
    "DeploySpec",
    "SecretRef",
    "Serverless",
    "check_name",
    "options_from",
    "parse_env",
    "parse_ttl",
]

TARGETS = ("local", "sagemaker")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_STARTUP_TIMEOUT_S = 600
DEFAULT_LOG_RETENTION_DAYS = 30
# The retention values CloudWatch Logs accepts (PutRetentionPolicy). Kept here, not in shipyard.cloud: the
# spec is checked for every target, and the `local` one must work without boto3 (the base install).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)  # fmt: skip
# SageMaker's pattern for endpoint, endpoint-config and model names (botocore's service model).
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NAME_MAX = 63
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Variables the server or SageMaker set themselves; --env must not fight them.
_RESERVED_ENV = {"SHIPYARD_SECRETS", "SAGEMAKER_BIND_TO_PORT", "SHIPYARD_MODEL_DIR", "SM_MODEL_DIR"}


def check_name(name: str) -> str:
    """A name SageMaker accepts for an endpoint (≤ 63 characters, letters, digits, inner hyphens)."""
    if not name:
        raise SpecError("the deployment needs a name: --name NAME")
    if len(name) > _NAME_MAX:
        raise SpecError(f"--name {name!r} is {len(name)} characters; SageMaker allows at most {_NAME_MAX}")
    if not _NAME.match(name):
        raise SpecError(
            f"--name {name!r} is not a valid endpoint name: use letters, digits and hyphens, starting and "
            "ending with a letter or digit (SageMaker's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$)"
        )
    return name


@dataclass(frozen=True)
class Serverless:
    """``--serverless MEMORY_MB:MAX_CONCURRENCY``: SageMaker Serverless Inference limits."""

    memory_mb: int
    max_concurrency: int

    @classmethod
    def parse(cls, text: str) -> Serverless:
        memory, sep, concurrency = text.partition(":")
        try:
            value = cls(int(memory), int(concurrency) if sep else 20)
        except ValueError:
            raise SpecError(f"--serverless {text!r}: expected MEMORY_MB:MAX_CONCURRENCY, e.g. 2048:10") from None
        value.check()
        return value

    def check(self) -> None:
        if self.memory_mb not in range(1024, 6145, 1024):
            raise SpecError(
                f"--serverless memory {self.memory_mb} MB: SageMaker allows 1024, 2048, 3072, 4096, 5120 or 6144"
            )
        if not 1 <= self.max_concurrency <= 200:
            raise SpecError(f"--serverless concurrency {self.max_concurrency}: SageMaker allows 1 to 200")


@dataclass(frozen=True)
class Autoscale:
    """``--autoscale MIN:MAX`` with the sustainable requests per second of one instance (``--max-rps``).

    The target-tracking value is in invocations per instance per *minute*: ``max_rps × 0.5 × 60`` keeps
    each instance at half of what it can take, the usual safety factor.
    """

    minimum: int
    maximum: int
    max_rps: float
    safety: float = 0.5

    @classmethod
    def parse(cls, text: str, max_rps: float | None) -> Autoscale:
        low, sep, high = text.partition(":")
        try:
            minimum, maximum = int(low), int(high)
        except ValueError:
            raise SpecError(f"--autoscale {text!r}: expected MIN:MAX instance counts, e.g. 1:4") from None
        if not sep:
            raise SpecError(f"--autoscale {text!r}: expected MIN:MAX instance counts, e.g. 1:4")
        if max_rps is None:
            raise SpecError(
                "--autoscale needs --max-rps: the requests per second one instance sustains "
                "(measure it with `shipyard bench`); the scaling target is half of it"
            )
        value = cls(minimum, maximum, float(max_rps))
        value.check()
        return value

    def check(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise SpecError(f"--autoscale {self.minimum}:{self.maximum}: need 1 <= MIN <= MAX")
        if self.maximum > 100:
            raise SpecError(f"--autoscale MAX {self.maximum} is over 100 instances; ask for a quota and split")
        if not self.max_rps > 0:
            raise SpecError(f"--max-rps {self.max_rps}: must be > 0")

    @property
    def target_per_minute(self) -> float:
        return round(self.max_rps * self.safety * 60, 2)


@dataclass(frozen=True)
class SecretRef:
    """``--secret NAME`` or ``--secret ENV_VAR=NAME``: which secret, and the variable the handler reads."""

    name: str
    env_var: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        var, sep, name = text.partition("=")
        if not sep:
            var, name = "", text
        if not _SECRET_NAME.match(name):
            raise SpecError(f"--secret {text!r}: not a Secrets Manager name")
        var = var or re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
        if not _ENV_KEY.match(var):
            raise SpecError(f"--secret {text!r}: {var!r} is not a valid environment variable name")
        return cls(name=name, env_var=var)

    def __str__(self) -> str:
        return f"{self.env_var}={self.name}"


def parse_env(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``--env``), checked."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise SpecError(f"--env {item!r}: expected KEY=VALUE with KEY a valid variable name")
        if key in _RESERVED_ENV:
            raise SpecError(f"--env {key}: set by Shipyard itself (use --secret for secrets)")
        env[key] = value
    return env


def parse_ttl(text: str | None) -> timedelta | None:
    """``--ttl 2h`` (s, m, h, d, w)."""
    if not text:
        return None
    match = _TTL.match(text)
    if not match:
        raise SpecError(f"--ttl {text!r}: expected a number and a unit, e.g. 90m, 2h, 7d")
    seconds = float(match.group(1)) * _TTL_UNITS[match.group(2)]
    if seconds < 60:
        raise SpecError(f"--ttl {text!r}: at least one minute")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DeploySpec:
    """Everything a target needs to create an endpoint. Build with keyword arguments; :meth:`check` validates."""

    source: str
    name: str
    target: str = "local"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    serverless: Serverless | None = None
    autoscale: Autoscale | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[SecretRef, ...] = ()
    data_capture_pct: int | None = None
    startup_timeout_s: int = DEFAULT_STARTUP_TIMEOUT_S
    region: str | None = None
    role_arn: str | None = None
    ttl: timedelta | None = None
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    bucket: str | None = None
    # Where images are pushed instead of the ECR host (a registry on 127.0.0.1 in tests); recorded in ECR.
    registry_override: str | None = None
    # a prebuilt image for the bundle (``shipyard build`` output) instead of building one
    image: str | None = None
    # local target
    port: int | None = None
    engine: str | None = None
    base_image: str | None = None
    workers: int | None = None

    def check(self) -> DeploySpec:
        """Raise :class:`SpecError` for anything that cannot work; return ``self``."""
        check_name(self.name)
        if self.target not in TARGETS:
            raise SpecError(f"--target {self.target!r}: choose one of {', '.join(TARGETS)}")
        if not 1 <= self.instance_count <= 100:
            raise SpecError(f"--instance-count {self.instance_count}: between 1 and 100")
        if not 60 <= self.startup_timeout_s <= 3600:
            raise SpecError(
                f"--startup-timeout {self.startup_timeout_s}: SageMaker allows 60 to 3600 seconds "
                "(ContainerStartupHealthCheckTimeoutInSeconds)"
            )
        if self.data_capture_pct is not None and not 0 <= self.data_capture_pct <= 100:
            raise SpecError(f"--data-capture {self.data_capture_pct}: a percentage from 0 to 100")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SpecError(
                f"--log-retention {self.log_retention_days}: CloudWatch accepts "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))} days"
            )
        if self.serverless is not None:
            self.serverless.check()
            if self.autoscale is not None:
                raise SpecError("--serverless scales by itself: drop --autoscale (its limit is MAX_CONCURRENCY)")
            if self.data_capture_pct:
                raise SpecError("--data-capture is not available on serverless endpoints (SageMaker's limit)")
            if self.instance_count != 1 or self.instance_type != DEFAULT_INSTANCE_TYPE:
                raise SpecError("--serverless has no instances: drop --instance-type/--instance-count")
        if self.autoscale is not None:
            self.autoscale.check()
            if not self.autoscale.minimum <= self.instance_count <= self.autoscale.maximum:
                raise SpecError(
                    f"--instance-count {self.instance_count} is outside --autoscale "
                    f"{self.autoscale.minimum}:{self.autoscale.maximum}"
                )
        if self.target == "sagemaker":
            check_instance_type(self.instance_type)
        env_names = [s.env_var for s in self.secrets]
        if len(set(env_names)) != len(env_names) or set(env_names) & set(self.env):
            raise SpecError("two --secret/--env settings use the same environment variable")
        return self

    def expires_at(self, now: datetime) -> datetime | None:
        return now + self.ttl if self.ttl else None


def check_instance_type(instance_type: str) -> None:
    """The instance types SageMaker hosting accepts, from botocore's service model (no AWS call)."""
    import difflib

    try:
        import botocore.session
    except ImportError:  # the base install: the sagemaker target is the aws extra's
        from shipyard.errors import NEEDS_BOTO3, CloudError

        raise CloudError(NEEDS_BOTO3) from None

    model = botocore.session.get_session().get_service_model("sagemaker")
    known = list(model.shape_for("ProductionVariantInstanceType").enum)
    if instance_type not in known:
        close = difflib.get_close_matches(instance_type, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (types look like ml.m5.large)"
        raise SpecError(f"--instance-type {instance_type!r} is not a SageMaker hosting instance type{hint}")


def options_from(
    *,
    target: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    serverless: str | None = None,
    autoscale: str | None = None,
    max_rps: float | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    data_capture: int | None = None,
    startup_timeout: int | None = None,
    region: str | None = None,
    role_arn: str | None = None,
    ttl: str | None = None,
    image: str | None = None,
    port: int | None = None,
    **more: Any,
) -> dict[str, Any]:
    """:class:`DeploySpec` keyword arguments from user-facing values (CLI strings); only the ones given."""
    options: dict[str, Any] = {
        "target": target,
        "instance_type": instance_type,
        "instance_count": instance_count,
        "serverless": Serverless.parse(serverless) if serverless else None,
        "autoscale": Autoscale.parse(autoscale, max_rps) if autoscale else None,
        "env": dict(env) if env else None,
        "secrets": tuple(SecretRef.parse(s) for s in secrets) or None,
        "data_capture_pct": data_capture,
        "startup_timeout_s": startup_timeout,
        "region": region,
        "role_arn": role_arn,
        "ttl": parse_ttl(ttl),
        "image": image,
        "port": port,
        **more,
    }
    return {key: value for key, value in options.items() if value is not None}
