"""What ``shipyard expose`` is asked for (:class:`ExposeOptions`) and what it made (:class:`Exposure`).

A deployment exposed on ``sagemaker`` gets an API Gateway REST API in front of its endpoint
(``deploy/sagemaker/expose.py``); on ``local``, a small front on 127.0.0.1 with the same behaviour
(``deploy/front/``). Both are recorded in the deployment's record (``Deployment.exposure``, and its resources),
so ``unexpose`` and ``cleanup`` find every part of it.

API Gateway's own limits are said up front (:func:`limit_warnings`): a 10 MB payload and a 29 s integration
timeout (the default; raising it needs a quota increase).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from shipyard.client.chunked import API_GATEWAY, limits_for
from shipyard.errors import SpecError

if TYPE_CHECKING:
    from shipyard.deploy.state import Deployment

__all__ = [
    "API_PAYLOAD_LIMIT",
    "API_TIMEOUT_S",
    "AUTHS",
    "ExposeOptions",
    "Exposure",
    "Quota",
    "key_secret_name",
    "limit_warnings",
    "not_exposed",
]

API_PAYLOAD_LIMIT = API_GATEWAY.max_payload_bytes  # API Gateway REST API: 10 MB request payload (a hard limit)
API_TIMEOUT_S = API_GATEWAY.time_limit_s  # the default integration timeout of a REST API (more: a quota increase)
AUTHS = ("api-key", "iam", "none")
Auth = Literal["api-key", "iam", "none"]
_PERIODS = {"day": "DAY", "week": "WEEK", "month": "MONTH"}
_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
NEAR_TIMEOUT = 0.8  # a measured latency above this share of the 29 s is "near" it


def not_exposed(deployment: str) -> str:
    """The one message for a deployment without a public API, wherever it is asked for one."""
    return f"{deployment} has no public API: `shipyard expose {deployment}` makes one"


def key_secret_name(deployment: str) -> str:
    """Where the API key of an exposed deployment is kept (Secrets Manager's name; the local file's stem)."""
    return f"shipyard/{deployment}/api-key"


@dataclass(frozen=True)
class Quota:
    """Requests per period (API Gateway usage plans count per DAY, WEEK or MONTH)."""

    limit: int
    period: str  # DAY | WEEK | MONTH

    @classmethod
    def parse(cls, text: str) -> Quota:
        """``100000/month`` (or ``/day``, ``/week``)."""
        count, _, period = text.partition("/")
        try:
            limit = int(count.replace("_", "").replace(",", ""))
        except ValueError:
            limit = 0
        if limit < 1 or period.lower() not in _PERIODS:
            raise SpecError(f"--quota {text!r}: COUNT/PERIOD, e.g. 100000/month (day, week or month)", option="quota")
        return cls(limit, _PERIODS[period.lower()])

    def __str__(self) -> str:
        return f"{self.limit}/{self.period.lower()}"


@dataclass(frozen=True)
class ExposeOptions:
    """How a deployment is put on a public HTTPS API; checked when made."""

    auth: Auth = "api-key"
    rate: float = 50.0  # steady requests per second (the usage plan's and the stage's throttle)
    burst: int = 100  # the token bucket's size
    quota: Quota | None = None
    path: str = "/predict"

    def __post_init__(self) -> None:
        if self.auth not in AUTHS:
            raise SpecError(f"--auth {self.auth!r}: choose one of {', '.join(AUTHS)}", option="auth")
        if not 0 < self.rate <= 10_000:
            raise SpecError(f"--rate {self.rate:g}: requests per second, above 0 and at most 10000", option="rate")
        if not 1 <= self.burst <= 5_000:
            raise SpecError(f"--burst {self.burst}: between 1 and 5000 requests", option="burst")
        if not _PATH.match(self.path):
            raise SpecError(
                f"--path {self.path!r}: one or more /segments of letters, digits, '.', '_' or '-', e.g. /predict",
                option="path",
            )
        if self.auth != "api-key" and self.quota is not None:
            raise SpecError("--quota counts the requests of an API key: it needs --auth api-key", option="quota")

    @classmethod
    def parse(
        cls,
        *,
        auth: str = "api-key",
        rate: float = 50.0,
        burst: int = 100,
        quota: str | Quota | None = None,
        path: str = "/predict",
    ) -> ExposeOptions:
        typed = Quota.parse(quota) if isinstance(quota, str) else quota
        return cls(auth, rate, burst, typed, path if path.startswith("/") else f"/{path}")  # type: ignore[arg-type]


@dataclass
class Exposure:
    """A deployment's public API as made: kept in its record (``Deployment.exposure``), never the key itself."""

    url: str  # what callers POST to: https://ID.execute-api.REGION.amazonaws.com/STAGE/PATH, or http://127.0.0.1:P/PATH
    auth: str
    path: str
    rate: float
    burst: int
    quota: str | None = None  # "100000/month"
    key_ref: str | None = None  # api-key: the Secrets Manager name (sagemaker) or the key file's path (local)
    # sagemaker
    api_id: str | None = None
    stage: str | None = None
    key_id: str | None = None
    usage_plan_id: str | None = None
    role_arn: str | None = None
    # local
    front_pid: int | None = None
    front_port: int | None = None
    created_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exposure:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def limit_warnings(record: Deployment, options: ExposeOptions) -> list[str]:
    """What API Gateway's limits mean for ``record`` behind a public API: the effective payload limit (the
    lower of API Gateway's 10 MB and the endpoint's own), and the 29 s timeout against the endpoint's and
    against its last ``shipyard bench`` (``record.bench``), with the fix when answers come near it."""
    endpoint = limits_for(serverless=record.serverless is not None)
    kind = "serverless" if record.serverless is not None else "real-time"
    api_mb, endpoint_mb = API_PAYLOAD_LIMIT / 2**20, endpoint.max_payload_bytes / 2**20
    effective = limits_for(serverless=record.serverless is not None, behind_api=True).max_payload_bytes / 2**20
    warnings = [
        f"payload: API Gateway takes up to {api_mb:g} MB and the {kind} endpoint {endpoint_mb:g} MB, so a request "
        f"over {effective:g} MB fails (413); split larger inputs (`shipyard invoke --chunk`)"
    ]
    if endpoint.time_limit_s > API_TIMEOUT_S:
        warnings.append(
            f"timeout: API Gateway ends a request after {API_TIMEOUT_S:g} s (504) although the endpoint allows "
            f"{endpoint.time_limit_s:g} s"
        )
    warnings.extend(_bench_warning(record, options))
    return warnings


def _bench_warning(record: Deployment, options: ExposeOptions) -> list[str]:
    figures = record.bench
    if figures is None:
        return [f"no `shipyard bench {record.name}` yet: run one to see how close answers come to {API_TIMEOUT_S:g} s"]
    slowest = max(figures.p99_ms, figures.max_ms) / 1000
    if slowest < API_TIMEOUT_S * NEAR_TIMEOUT:
        return []
    over = "over" if slowest >= API_TIMEOUT_S else "near"
    return [
        f"latency: the last bench ({figures.measured_at or 'undated'}) measured p99 {figures.p99_ms / 1000:.1f} s "
        f"and max {figures.max_ms / 1000:.1f} s, {over} API Gateway's {API_TIMEOUT_S:g} s: send smaller requests "
        f"(`shipyard invoke --chunk`), use asynchronous inference, or ask AWS for a quota increase of the "
        f"integration timeout of {options.path} (Service Quotas)"
    ]
