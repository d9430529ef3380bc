"""What the registry keeps: SageMaker Model Registry's model (a group of numbered versions) as typed records.

A :class:`ModelVersion` is one ``ModelPackage`` of a ``ModelPackageGroup``: its number (from 1), its approval
status (``PendingManualApproval`` when registered, then ``Approved`` or ``Rejected`` with a reason), what it is
(the model archive, the image by digest, the content and instance types it serves), where it came from (the
source, the run's link, hyperparameters, training data and code versions, evaluation metrics) and what was done
with it (:class:`HistoryEntry`: every deploy, update, rollback and cleanup of a deployment serving it).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from shipyard.errors import RegistryError, UsageError

__all__ = [
    "ACTIONS",
    "APPROVED",
    "PENDING",
    "REJECTED",
    "STATUSES",
    "HistoryEntry",
    "ModelGroup",
    "ModelVersion",
    "NewVersion",
    "RunLink",
    "check_group_name",
    "is_version_ref",
    "parse_ref",
]

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
STATUSES = (PENDING, APPROVED, REJECTED)  # SageMaker's ModelApprovalStatus values
ACTIONS = ("deploy", "update", "rollback", "cleanup")  # what a deployment history entry records
# A ModelPackageGroupName: SageMaker's EntityName pattern, ≤ 63 characters.
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REF = re.compile(r"^([a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/([0-9]+)$")


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def check_group_name(name: str) -> str:
    """A group name SageMaker accepts (``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``); a UsageError naming ``--group``."""
    if not _GROUP.match(name or ""):
        raise UsageError(
            f"--group {name!r} is not a valid model group name: up to 63 letters, digits and hyphens, starting and "
            "ending with a letter or digit (SageMaker's ModelPackageGroupName pattern)"
        )
    return name


def is_version_ref(text: str) -> bool:
    """Whether ``text`` reads as ``GROUP/VERSION`` (``digits/3``)."""
    return _REF.match(text) is not None


def parse_ref(text: str) -> tuple[str, int | None]:
    """``digits/3`` → ("digits", 3); ``digits`` → ("digits", None); anything else is a RegistryError."""
    if match := _REF.match(text):
        return match.group(1), int(match.group(2))
    if _GROUP.match(text):
        return text, None
    raise RegistryError(f"{text!r} is not GROUP or GROUP/VERSION (e.g. digits or digits/3)")


@dataclass(frozen=True)
class HistoryEntry:
    """One thing done with a version: ``action`` (deploy, update, rollback, cleanup) of ``deployment`` on ``target``."""

    at: str  # ISO 8601, UTC
    action: str
    deployment: str
    target: str
    detail: str | None = None

    @classmethod
    def now(cls, action: str, deployment: str, target: str, detail: str | None = None) -> HistoryEntry:
        return cls(now_utc(), action, deployment, target, detail)


@dataclass(frozen=True)
class RunLink:
    """The training run a version came from, and where its experiment store keeps it."""

    name: str
    experiment: str | None = None
    tracking_uri: str | None = None
    tracking_run_id: str | None = None
    job_arn: str | None = None


@dataclass
class NewVersion:
    """What ``register`` records as a new version (the registry gives it its number, status and time)."""

    group: str
    source: str  # "run:NAME" or the bundle's path as given
    bundle_path: str  # the bundle folder it was made from (absolute)
    description: str | None = None
    image: str | None = None  # by digest when known
    image_digest: str | None = None
    content_types: list[str] = field(default_factory=list)
    response_types: list[str] = field(default_factory=list)
    realtime_instance_types: list[str] = field(default_factory=list)
    transform_instance_types: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # evaluation metrics (--metrics), else the run's final
    metrics_source: str | None = None  # the --metrics file, or "run:NAME" for the run's final metrics
    hyperparameters: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)  # channel -> its data version (sha256:… / etag:…)
    data_uris: dict[str, str] = field(default_factory=dict)  # channel -> the URI the run read
    code: dict[str, Any] | None = None  # the run's CodeVersion (commit, dirty, diff_sha256, source_sha256)
    run: RunLink | None = None
    customer_metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelVersion(NewVersion):
    """One version of a group: a ``ModelPackage``."""

    version: int = 0
    status: str = PENDING
    created_at: str = ""
    approval_reason: str | None = None  # SageMaker's ApprovalDescription
    status_changed_at: str | None = None
    model: str = ""  # the model archive: a local model.tar.gz (local backend) or the ModelDataUrl (s3://…)
    model_sha256: str | None = None
    arn: str | None = None  # the ModelPackageArn (sagemaker backend)
    history: list[HistoryEntry] = field(default_factory=list)
    history_dropped: int = 0  # sagemaker: the oldest entries CustomerMetadataProperties had no room for

    @property
    def ref(self) -> str:
        return f"{self.group}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersion:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["history"] = [HistoryEntry(**h) for h in values.get("history") or []]
        if values.get("run"):
            values["run"] = RunLink(**values["run"])
        return cls(**values)


@dataclass
class ModelGroup:
    """A ``ModelPackageGroup``: a name, a description and its versions (numbered from 1)."""

    name: str
    created_at: str
    description: str | None = None
    arn: str | None = None
    versions: list[ModelVersion] = field(default_factory=list)

    @property
    def latest(self) -> ModelVersion | None:
        return self.versions[-1] if self.versions else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at,
            "description": self.description,
            "arn": self.arn,
            "versions": [v.to_json() for v in self.versions],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelGroup:
        return cls(
            name=data["name"],
            created_at=data["created_at"],
            description=data.get("description"),
            arn=data.get("arn"),
            versions=[ModelVersion.from_json(v) for v in data.get("versions") or []],
        )
