"""The one interface of both registry backends, and the rules they share (names, approval)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shipyard.errors import RegistryError
from shipyard.registry.model import APPROVED, REJECTED, STATUSES, HistoryEntry, ModelGroup, ModelVersion, NewVersion

__all__ = ["BACKENDS", "Registry", "check_status", "find_group", "find_version"]

BACKENDS = ("local", "sagemaker")


class Registry(Protocol):
    """A model registry: ``local`` (one JSON document in Shipyard's home) or ``sagemaker`` (Model Package Groups)."""

    name: str  # local | sagemaker

    @property
    def where(self) -> str:
        """The file, or the region, for messages."""
        ...

    def create(self, new: NewVersion) -> ModelVersion:
        """A new version of ``new.group`` (the group made on first use), ``PendingManualApproval``."""
        ...

    def groups(self) -> list[ModelGroup]:
        """Every group, oldest first, each with its versions."""
        ...

    def group(self, name: str) -> ModelGroup:
        """One group with its versions; a RegistryError naming the known groups when there is none."""
        ...

    def version(self, group: str, number: int) -> ModelVersion:
        """One version; a RegistryError naming the group's versions when there is none."""
        ...

    def set_status(self, group: str, number: int, status: str, reason: str | None) -> ModelVersion:
        """Approve or reject (SageMaker's UpdateModelPackage: ModelApprovalStatus and ApprovalDescription)."""
        ...

    def add_history(self, group: str, number: int, entry: HistoryEntry) -> ModelVersion:
        """Append ``entry`` to the version's deployment history."""
        ...

    def model_file(self, version: ModelVersion) -> Path:
        """The version's model archive on this machine (what a deploy of it gets)."""
        ...


def find_group(groups: list[ModelGroup], name: str, where: str) -> ModelGroup:
    for group in groups:
        if group.name == name:
            return group
    known = ", ".join(g.name for g in groups) or "none yet: `shipyard register BUNDLE --group NAME` makes one"
    raise RegistryError(f"no model group named {name!r} in {where} (groups: {known})")


def find_version(group: ModelGroup, number: int, where: str) -> ModelVersion:
    for version in group.versions:
        if version.version == number:
            return version
    known = ", ".join(v.ref for v in group.versions) or "none"
    raise RegistryError(f"no version {group.name}/{number} in {where} (versions: {known})")


def check_status(version: ModelVersion, status: str, reason: str | None) -> None:
    """SageMaker's rules (its Model Registry guide, "Update the approval status of a model"): a version goes from
    PendingManualApproval to Approved or Rejected, a Rejected one may be approved later, but an Approved one is not
    changed to Rejected. Shipyard asks a reason of every rejection."""
    if status not in STATUSES:
        raise RegistryError(f"unknown approval status {status!r}: use one of {', '.join(STATUSES)}")
    if status == REJECTED and not (reason or "").strip():
        raise RegistryError(f"rejecting {version.ref} needs a reason: --reason TEXT")
    if status == REJECTED and version.status == APPROVED:
        raise RegistryError(
            f"{version.ref} is Approved, and SageMaker does not change an Approved version to Rejected: register "
            "a new version for the fix, and deploy (or `deploy --update`) another approved one"
        )
