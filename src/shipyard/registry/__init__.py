"""The model registry: SageMaker Model Registry's model (groups of numbered, approved or rejected versions with
their provenance and deployment history) on two backends, ``local`` (a file in Shipyard's home) and ``sagemaker``
(Model Package Groups). See docs/registry.md."""

from shipyard.registry.api import (
    Resolved,
    approve,
    note,
    open_registry,
    register,
    reject,
    remember,
    resolve_source,
    version_of,
)
from shipyard.registry.base import BACKENDS, Registry
from shipyard.registry.model import APPROVED, PENDING, REJECTED, HistoryEntry, ModelGroup, ModelVersion, NewVersion

__all__ = [
    "APPROVED",
    "BACKENDS",
    "PENDING",
    "REJECTED",
    "HistoryEntry",
    "ModelGroup",
    "ModelVersion",
    "NewVersion",
    "Registry",
    "Resolved",
    "approve",
    "note",
    "open_registry",
    "register",
    "reject",
    "remember",
    "resolve_source",
    "version_of",
]
