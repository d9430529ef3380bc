"""The registry's operations, for the CLI and Python: open a backend, register, approve or reject, and what a
deployment of a version does to it (its source resolved, its history appended).

``deploy GROUP/VERSION`` and ``deploy run:NAME`` are resolved here (:func:`resolve_source`) before the deploy
layer sees a plain source (a bundle folder or a model.tar.gz); after the deploy call succeeds the caller
records the version on the deployment and in the version's history (:func:`remember`, :func:`note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.deploy import Deployer
from shipyard.deploy.state import Deployment
from shipyard.errors import NotApproved, RegistryError, UsageError
from shipyard.experiments.record import RUN_PREFIX, RunStore
from shipyard.registry.base import BACKENDS, Registry
from shipyard.registry.local import LocalRegistry
from shipyard.registry.model import APPROVED, REJECTED, HistoryEntry, ModelVersion, is_version_ref, parse_ref
from shipyard.registry.sources import new_version, run_bundle
from shipyard.settings import Settings

__all__ = [
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


def open_registry(
    backend: str = "local", settings: Settings | None = None, *, region: str | None = None, bucket: str | None = None
) -> Registry:
    """The ``local`` or ``sagemaker`` registry."""
    settings = settings or Settings.from_env()
    if backend == "local":
        return LocalRegistry(settings)
    if backend == "sagemaker":
        from shipyard.registry.sagemaker import SageMakerRegistry

        return SageMakerRegistry(settings, region=region, bucket=bucket)
    raise UsageError(f"--registry {backend!r}: use one of {', '.join(BACKENDS)}")


def register(registry: Registry, source: str, group: str, *, settings: Settings, **options: Any) -> ModelVersion:
    """A new version of ``group`` from ``source`` (a bundle folder or ``run:NAME``), PendingManualApproval.
    ``options``: :func:`~shipyard.registry.sources.new_version`'s (metrics, description, image, instance_types...)."""
    return registry.create(new_version(source, group, settings=settings, **options))


def version_of(registry: Registry, ref: str) -> ModelVersion:
    group, number = parse_ref(ref)
    if number is None:
        raise RegistryError(f"{ref!r} names a group; give GROUP/VERSION (e.g. {ref}/1)")
    return registry.version(group, number)


def approve(registry: Registry, ref: str, reason: str | None = None) -> ModelVersion:
    version = version_of(registry, ref)
    return registry.set_status(version.group, version.version, APPROVED, reason)


def reject(registry: Registry, ref: str, reason: str | None) -> ModelVersion:
    version = version_of(registry, ref)
    return registry.set_status(version.group, version.version, REJECTED, reason)


@dataclass(frozen=True)
class Resolved:
    """A deploy source after the registry and the run store: ``source`` is what the deploy layer gets."""

    source: str
    version: ModelVersion | None = None
    registry: str | None = None  # the backend of ``version``


def resolve_source(source: str, *, settings: Settings, registry: Registry, allow_unapproved: bool = False) -> Resolved:
    """An existing path, an image reference: as given. ``run:NAME``: the run's bundle. ``GROUP/VERSION``: the
    version's model (only Approved unless ``allow_unapproved``: else :class:`NotApproved`)."""
    if Path(source).exists():
        return Resolved(source)
    if source.startswith(RUN_PREFIX):
        return Resolved(str(run_bundle(RunStore(settings).load(source))))
    if not is_version_ref(source):
        return Resolved(source)
    version = version_of(registry, source)
    if version.status != APPROVED and not allow_unapproved:
        why = f" ({version.approval_reason})" if version.approval_reason else ""
        raise NotApproved(
            f"{version.ref} is {version.status}{why}: only Approved versions deploy. `shipyard models approve "
            f"{version.ref}` approves it; --allow-unapproved deploys it anyway"
        )
    return Resolved(_local_model(version, registry), version, registry.name)


def _local_model(version: ModelVersion, registry: Registry) -> str:
    return str(registry.model_file(version))


def remember(deployer: Deployer, name: str, resolved: Resolved) -> Deployment:
    """Record on the deployment ``name`` which version it serves now (None: a source given directly)."""
    record = deployer.record(name)
    record.model_version = resolved.version.ref if resolved.version else None
    record.model_registry = resolved.registry if resolved.version else None
    deployer.state.put(record)
    return record


def note(
    settings: Settings, ref: str | None, backend: str | None, entry: HistoryEntry, **open_options: Any
) -> ModelVersion | None:
    """Append ``entry`` to the history of the version ``ref`` (in ``backend``); nothing for a deployment of none."""
    if not ref or not backend:
        return None
    registry = open_registry(backend, settings, **open_options)
    group, number = parse_ref(ref)
    return registry.add_history(group, number or 0, entry)
