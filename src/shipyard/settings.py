"""Every setting of the tool side, read from the environment in one place.

:class:`ServerConfig` (``config.py``) is what the server inside the image reads; :class:`Settings` is what the
tool around it reads: where deployments are recorded, where builds are cached, which container engine to run,
which registry to push to instead of ECR's host, and the limits on archives it opens. It is built once by
:meth:`Settings.from_env` (the CLI does it at start; the Python API does it when none is given) and passed
down; nothing else in the tool reads ``os.environ``. Like ``ServerConfig.from_env`` it is pure: give it any
mapping and it reads that, checks the numeric ones (the archive limits), and raises
:class:`~shipyard.errors.SettingsError` (a usage error, exit 2) for one it cannot use; the engine's name is
checked where the engine is found (``image.engine.detect``).

| variable                 | default                       | meaning                                           |
|--------------------------|-------------------------------|---------------------------------------------------|
| SHIPYARD_STATE           | ~/.shipyard/state.json        | the record of every deployment                    |
| SHIPYARD_CACHE_DIR       | $XDG_CACHE_HOME/shipyard      | build contexts, wheels, base and image caches     |
| XDG_CACHE_HOME           | ~/.cache                      | (the parent of the cache when the above is unset) |
| SHIPYARD_ENGINE          | docker if it answers, podman  | the container engine: docker or podman            |
| DOCKER_HOST              | (docker's default)            | a remote daemon (tcp:// or ssh://) shares no namespaces |
| SHIPYARD_ECR_REGISTRY    | (ECR's host)                  | push here instead and record the image in ECR     |
| SHIPYARD_MAX_BUNDLE_*    | see ``ArchiveLimits``         | what an archive may extract to                    |
| SHIPYARD_HOME            | the state file's folder       | training runs (runs/), the local model registry   |
| MLFLOW_TRACKING_URI      | sqlite:///HOME/mlflow.db      | the experiment store (MLflow's own variable)      |

Child processes (the engine, pip) get :attr:`Settings.environ`, the environment the settings were read from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.config import ArchiveLimits

__all__ = ["SETTINGS_ENV", "Settings"]

# The variable of each setting.
SETTINGS_ENV: dict[str, str] = {
    "state_path": "SHIPYARD_STATE",
    "cache_dir": "SHIPYARD_CACHE_DIR",
    "engine": "SHIPYARD_ENGINE",
    "docker_host": "DOCKER_HOST",
    "ecr_registry": "SHIPYARD_ECR_REGISTRY",
    "home": "SHIPYARD_HOME",
    "tracking_uri": "MLFLOW_TRACKING_URI",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The tool's settings; build with :meth:`from_env`, change one with :meth:`with_`."""

    state_path: Path
    cache_dir: Path
    engine: str | None = None
    docker_host: str | None = None
    ecr_registry: str | None = None
    home: Path | None = None  # None: the state file's folder (see :attr:`shipyard_home`)
    tracking_uri: str | None = None  # None: the local MLflow store under the home (see :attr:`tracking`)
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings in ``env`` (default: ``os.environ``); ``overrides`` (not None) win over it."""
        env = dict(os.environ if env is None else env)
        home = Path(env.get("HOME") or Path.home())
        state = _text(env, "state_path")
        cache = _text(env, "cache_dir")
        xdg = env.get("XDG_CACHE_HOME", "").strip()
        cache_root = _path(xdg, home) if xdg else home / ".cache"
        settings = cls(
            state_path=_path(state, home) if state else home / ".shipyard" / "state.json",
            cache_dir=_path(cache, home) if cache else cache_root / "shipyard",
            engine=_text(env, "engine"),
            docker_host=_text(env, "docker_host"),
            ecr_registry=_text(env, "ecr_registry"),
            home=_path(home_dir, home) if (home_dir := _text(env, "home")) else None,
            tracking_uri=_text(env, "tracking_uri"),
            archive=ArchiveLimits.from_env(env),
            environ=env,
        )
        return settings.with_(**overrides)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (None values are ignored, so an option not given keeps the setting)."""
        given = {key: value for key, value in changes.items() if value is not None}
        for key in ("state_path", "cache_dir", "home"):
            if key in given:
                given[key] = Path(given[key]).expanduser()
        return replace(self, **given) if given else self

    @property
    def shipyard_home(self) -> Path:
        """Shipyard's own folder: ``SHIPYARD_HOME``, else the state file's folder (``~/.shipyard``)."""
        return self.home or self.state_path.parent

    @property
    def runs_dir(self) -> Path:
        """Where training runs are recorded, one folder each (``HOME/runs/NAME/run.json`` and its files)."""
        return self.shipyard_home / "runs"

    @property
    def registry_path(self) -> Path:
        """The local model registry: one JSON document (``HOME/registry.json``)."""
        return self.shipyard_home / "registry.json"

    @property
    def tracking(self) -> str:
        """The MLflow tracking URI: ``MLFLOW_TRACKING_URI``, else a SQLite store under the home (no server)."""
        return self.tracking_uri or f"sqlite:///{(self.shipyard_home / 'mlflow.db').as_posix()}"

    @property
    def remote_docker(self) -> bool:
        """Whether the docker daemon is on another machine (``DOCKER_HOST`` over tcp:// or ssh://)."""
        return (self.docker_host or "unix://").startswith(("tcp://", "ssh://"))

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a child process (the engine, pip): these settings' own, plus ``extra``."""
        return {**self.environ, **(extra or {})}


def _text(env: Mapping[str, str], key: str) -> str | None:
    return env.get(SETTINGS_ENV[key], "").strip() or None


def _path(raw: str, home: Path) -> Path:
    return home / raw[2:] if raw.startswith("~/") else Path(raw).expanduser()
