"""The ``local`` backend: one JSON document (``settings.registry_path``, ``HOME/registry.json``), and each version's
model archive under ``HOME/models/GROUP/VERSION/model.tar.gz``.

The document is written atomically under a lock (the same :func:`~shipyard.deploy.state.file_lock` and
:func:`~shipyard.deploy.state.write_atomic` as the state file), so two commands never lose each other's writes::

    {"version": 1, "groups": {"digits": {"name": "digits", "created_at": ..., "versions": [{...}, ...]}}}

A version's model is packed (``bundle.archive.pack``, reproducible) when it is registered, so the version stays
what it was even when the bundle folder it came from changes or goes; its sha256 is kept beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson

from shipyard.bundle.archive import pack
from shipyard.deploy.state import file_lock, write_atomic
from shipyard.errors import RegistryError, SettingsError
from shipyard.registry.base import check_status, find_group, find_version
from shipyard.registry.model import PENDING, HistoryEntry, ModelGroup, ModelVersion, NewVersion, now_utc
from shipyard.settings import Settings

__all__ = ["LocalRegistry", "sha256_of"]

VERSION = 1


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class LocalRegistry:
    """The registry in Shipyard's home; no server, no account."""

    name = "local"

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings.from_env()
        self.path = settings.registry_path
        self.models = settings.shipyard_home / "models"
        self.where = str(self.path)

    # -- reading ----------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, ModelGroup]:
        if not self.path.is_file():
            return {}
        try:
            document = orjson.loads(self.path.read_bytes())
            if not isinstance(document, dict) or document.get("version") != VERSION:
                raise ValueError(f"expected version {VERSION}")
            return {name: ModelGroup.from_json(g) for name, g in document.get("groups", {}).items()}
        except (orjson.JSONDecodeError, OSError, TypeError, ValueError, KeyError) as exc:
            raise SettingsError(
                f"the model registry {self.path} cannot be read ({exc}); move it away (SHIPYARD_HOME sets its folder)",
                setting="SHIPYARD_HOME",
            ) from None

    def groups(self) -> list[ModelGroup]:
        return sorted(self._load().values(), key=lambda g: g.created_at)

    def group(self, name: str) -> ModelGroup:
        return find_group(self.groups(), name, self.where)

    def version(self, group: str, number: int) -> ModelVersion:
        return find_version(self.group(group), number, self.where)

    # -- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, ModelGroup]]:
        with file_lock(self.path):
            groups = self._load()
            yield groups
            document = {"version": VERSION, "groups": {n: g.to_json() for n, g in sorted(groups.items())}}
            data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
            write_atomic(self.path, data, prefix=".registry-")

    def create(self, new: NewVersion) -> ModelVersion:
        with self._locked() as groups:
            now = now_utc()
            group = groups.setdefault(new.group, ModelGroup(name=new.group, created_at=now))
            number = max((v.version for v in group.versions), default=0) + 1
            folder = self.models / new.group / str(number)
            if folder.exists():  # left by a register that failed before the document was written
                shutil.rmtree(folder)
            archive = pack(new.bundle_path, folder / "model.tar.gz")
            version = ModelVersion(
                **vars(new), version=number, status=PENDING, created_at=now, model=str(archive),
                model_sha256=sha256_of(archive),
            )  # fmt: skip
            group.versions.append(version)
        return version

    @contextlib.contextmanager
    def _change(self, group: str, number: int) -> Iterator[ModelVersion]:
        with self._locked() as groups:
            yield find_version(find_group(list(groups.values()), group, self.where), number, self.where)

    def set_status(self, group: str, number: int, status: str, reason: str | None) -> ModelVersion:
        with self._change(group, number) as version:
            check_status(version, status, reason)
            version.status, version.approval_reason, version.status_changed_at = status, reason, now_utc()
        return version

    def add_history(self, group: str, number: int, entry: HistoryEntry) -> ModelVersion:
        with self._change(group, number) as version:
            version.history.append(entry)
        return version

    def model_file(self, version: ModelVersion) -> Path:
        path = Path(version.model)
        if not path.is_file():
            raise RegistryError(f"{version.ref}'s model {path} is gone from {self.models}; register the bundle again")
        return path
