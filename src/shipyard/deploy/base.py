"""The target protocol: what ``local`` and ``sagemaker`` both do, and how they report progress.

A target creates an endpoint for a :class:`DeployRun` (the options, the record, how to save it, who to tell),
records every resource it creates in the run's :class:`~shipyard.deploy.state.Deployment` as soon as it exists
(``run.save()``, so a crash half-way leaves a record that ``cleanup`` completes), and answers the same questions
afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.client.transport import Transport
from shipyard.deploy.asynchronous import AsyncChannel
from shipyard.deploy.expose import ExposeOptions, Exposure
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.state import Deployment

__all__ = [
    "AlarmState",
    "CleanupReport",
    "DeployRun",
    "Health",
    "Plan",
    "PlannedResource",
    "Reporter",
    "Save",
    "SilentReporter",
    "Target",
]

Save = Callable[[Deployment], None]

# Endpoint lifecycle, as SageMaker names it; the local target uses the same words.
CREATING, IN_SERVICE, UPDATING, FAILED, DELETING, DELETED = (
    "Creating",
    "InService",
    "Updating",
    "Failed",
    "Deleting",
    "Deleted",
)


class Reporter(Protocol):
    """Where a target tells what it is doing (the CLI draws it; the Python API stays quiet by default)."""

    def step(self, message: str) -> None:
        """One finished step ("created the role shipyard-x")."""

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        """The live status line while waiting (Creating → InService)."""


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        pass


@dataclass
class DeployRun:
    """One deploy or update under way: its options, the record it fills in, where that is saved, who is told.

    ``options`` may be replaced as the run learns more (an update inherits the live environment).
    """

    options: DeployOptions
    record: Deployment
    saver: Save
    reporter: Reporter

    def save(self) -> None:
        """Write the record now (right after each resource is created)."""
        self.saver(self.record)

    def step(self, message: str) -> None:
        self.reporter.step(message)


@dataclass(frozen=True)
class PlannedResource:
    kind: str
    name: str
    detail: str = ""
    monthly_usd: float | None = None


@dataclass
class Plan:
    """What a deploy would create (``--dry-run``), with the estimated monthly cost of each part."""

    deployment: str
    target: str
    resources: list[PlannedResource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    price_label: str = ""

    def add(self, kind: str, name: str, detail: str = "", monthly_usd: float | None = None) -> None:
        self.resources.append(PlannedResource(kind, name, detail, monthly_usd))

    @property
    def monthly_usd(self) -> float:
        return sum(r.monthly_usd or 0.0 for r in self.resources)


@dataclass
class CleanupReport:
    """What a cleanup did. Cleanup is idempotent: a second run, or one on a name that has no record (never
    deployed here, or cleaned up already: ``recorded`` is False), deletes nothing and is no error."""

    deployment: str
    deleted: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    recorded: bool = True  # the state file had a record of this name
    forgotten: bool = False  # the record left the state file (nothing of it is left to delete)


@dataclass(frozen=True)
class AlarmState:
    """One CloudWatch alarm of a deployment, as DescribeAlarms answers it."""

    name: str
    metric: str  # ModelLatency, Invocation5XXErrors, ...
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str = ""
    threshold: str = ""  # "p99 > 250 ms over 3 of 5 min", for people


@dataclass
class Health:
    """What ``shipyard status NAME`` shows beyond the state: the alarms, and the traffic of a recent window.

    ``sagemaker``: the alarms' states and the last hour from CloudWatch (GetMetricData); ``local``: no alarms, the
    figures from the server's own ``/metrics`` since the container started. A figure nobody measured is None.
    """

    window: str  # "last hour" | "since the container started"
    alarms: list[AlarmState] = field(default_factory=list)
    invocations: float | None = None
    errors_4xx: float | None = None
    errors_5xx: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, float | None] = field(default_factory=dict)  # e.g. serverless: model_setup_ms (cold starts)
    notes: list[str] = field(default_factory=list)


class Target(Protocol):
    """``local`` and ``sagemaker`` implement this."""

    name: str

    def plan(self, options: DeployOptions) -> Plan: ...

    def deploy(self, run: DeployRun) -> Deployment: ...

    def update(self, run: DeployRun) -> Deployment: ...

    def refresh(self, record: Deployment) -> Deployment:
        """The record with its status read from the target (the engine, or AWS)."""
        ...

    def transport(
        self, record: Deployment, *, read_timeout_s: float, connections: int, target_model: str | None = None
    ) -> Transport:
        """The one way to the endpoint (HTTP, or InvokeEndpoint): single requests, chunked runs and the benchmark
        all go through it; ``read_timeout_s`` bounds each request; ``target_model``: a multi-model endpoint's
        model (TargetModel, or X-Amzn-SageMaker-Target-Model over HTTP)."""
        ...

    def logs(self, record: Deployment, *, lines: int, follow: bool) -> Iterator[str]: ...

    def cleanup(self, record: Deployment, save: Save, reporter: Reporter, *, keep_artifacts: bool) -> CleanupReport: ...

    def expose(
        self, record: Deployment, options: ExposeOptions, save: Save, reporter: Reporter
    ) -> tuple[Exposure, str | None]:
        """Put ``record`` on a public API; the exposure (also set on the record and saved) and, for
        ``api-key``, the key's value (the caller prints it only when asked). Its resources join the record's."""
        ...

    def unexpose(self, record: Deployment, save: Save, reporter: Reporter) -> list[str]:
        """Remove the public API of ``record`` (idempotent); what was deleted."""
        ...

    def api_transport(self, record: Deployment, *, connections: int) -> Transport:
        """The way callers of the public API go: its URL, with the key (``x-api-key``) or a SigV4 signature."""
        ...

    def api_key(self, record: Deployment) -> str | None:
        """The API key of an ``api-key`` exposure, read from where ``expose`` kept it."""
        ...

    def health(self, record: Deployment) -> Health:
        """Its alarms' states and recent traffic (see :class:`Health`)."""
        ...

    def async_channel(self, record: Deployment) -> AsyncChannel:
        """How ``invoke --async`` queues requests on an asynchronous deployment and reads their outcome."""
        ...
