"""Every server setting, read from the environment in one place.

SageMaker configures a container through environment variables; Shipyard reads the ones the SageMaker
toolkits read, plus its own ``SHIPYARD_*`` knobs, in :meth:`ServerConfig.from_env` and nowhere else.
Nothing is read at import time.

| variable                              | default          | meaning                                   |
|---------------------------------------|------------------|-------------------------------------------|
| SAGEMAKER_BIND_TO_PORT                | 8080             | port to listen on                         |
| SAGEMAKER_MODEL_SERVER_WORKERS        | usable cores     | worker processes                          |
| SAGEMAKER_MODEL_SERVER_TIMEOUT        | 60               | seconds per invocation before 504         |
| SAGEMAKER_MAX_PAYLOAD_IN_MB           | 6                | request body limit before 413             |
| SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT  | (request's type) | answer type when Accept is missing or */* |
| SAGEMAKER_PROGRAM                     | inference.py     | handler script inside ``code/``           |
| SAGEMAKER_CONTAINER_LOG_LEVEL         | INFO             | log level (names or the toolkit's numbers)|
| SM_MODEL_DIR / SHIPYARD_MODEL_DIR     | /opt/ml/model    | the bundle                                |
| SHIPYARD_HOST                         | 0.0.0.0          | address to bind                           |
| SHIPYARD_MAX_BATCH_SIZE               | 64               | rows per model call (adaptive batching)   |
| SHIPYARD_MAX_BATCH_DELAY_MS           | 0                | extra wait for a batch to fill (0: greedy)|
| SHIPYARD_MAX_QUEUE                    | 2048             | queued requests per worker before 503     |
| SHIPYARD_ACCESS_LOG                   | 1                | one JSON line per request on stdout       |
| SHIPYARD_GRACEFUL_TIMEOUT             | 30               | seconds SIGTERM waits for in-flight work  |
| SHIPYARD_RUN_AS                       | (none)           | user the workers run as (root drops to it)|
| SHIPYARD_CAPTURE_DESTINATION          | (off)            | data capture: a directory or s3://bucket/prefix |
| SHIPYARD_CAPTURE_PERCENT              | 100              | share of invocations captured (0-100)     |
| SHIPYARD_CAPTURE_QUEUE                | 10000            | captured records waiting to be written; more are dropped |
| SHIPYARD_CAPTURE_FLUSH_SECONDS        | 60               | s3:// destinations: seconds between uploads |
| SHIPYARD_MODEL_THREADS                | cores ÷ workers  | torch threads per worker (torch flavors)  |
| SHIPYARD_SECRETS                      | (none)           | ``VAR=NAME,...``: secrets put in os.environ at start |
| SAGEMAKER_REGION / AWS_REGION         | (boto3's)        | region of those secrets                   |
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from shipyard.errors import ShipyardError

__all__ = ["ServerConfig", "usable_cores"]

_TOOLKIT_LEVELS = {"10": "DEBUG", "20": "INFO", "30": "WARNING", "40": "ERROR", "50": "CRITICAL"}


def usable_cores() -> int:
    """Cores this process may run on (respects ``taskset`` and cgroup pinning via affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    model_dir: str = "/opt/ml/model"
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    timeout_s: float = 60.0
    max_payload_bytes: int = 6 * 1024 * 1024
    default_accept: str | None = None
    program: str = "inference.py"
    log_level: str = "INFO"
    max_batch_size: int = 64
    max_batch_delay_ms: float = 0.0
    max_queue: int = 2048
    access_log: bool = True
    graceful_timeout_s: float = 30.0
    run_as: str | None = None
    capture_destination: str | None = None  # None: data capture off (see serving/capture.py)
    capture_percent: float = 100.0
    capture_queue: int = 10_000
    capture_flush_s: float = 60.0
    model_threads: int = 0  # 0: usable cores ÷ workers
    secrets: tuple[str, ...] = ()  # "VAR=NAME" entries of SHIPYARD_SECRETS (names only; see serving/secrets.py)
    region: str | None = None
    preload: str = "auto"  # load the model once before forking the workers: auto (by flavor) | on | off

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Build the config from ``env`` (default: ``os.environ``); ``overrides`` win over it."""
        env = os.environ if env is None else env
        d = cls()
        values: dict[str, Any] = {
            "model_dir": env.get("SHIPYARD_MODEL_DIR") or env.get("SM_MODEL_DIR") or d.model_dir,
            "host": env.get("SHIPYARD_HOST", d.host),
            "port": _int(env, "SAGEMAKER_BIND_TO_PORT", d.port, low=0, high=65535),
            "workers": _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", usable_cores(), low=1, high=512),
            "timeout_s": _float(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", d.timeout_s, low=0.001),
            "max_payload_bytes": int(_float(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6.0, low=0.000001) * 1024 * 1024),
            "default_accept": env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None,
            "program": env.get("SAGEMAKER_PROGRAM") or d.program,
            "log_level": _level(env.get("SHIPYARD_LOG_LEVEL") or env.get("SAGEMAKER_CONTAINER_LOG_LEVEL")),
            "max_batch_size": _int(env, "SHIPYARD_MAX_BATCH_SIZE", d.max_batch_size, low=1, high=1 << 20),
            "max_batch_delay_ms": _float(env, "SHIPYARD_MAX_BATCH_DELAY_MS", 0.0, low=0.0),
            "max_queue": _int(env, "SHIPYARD_MAX_QUEUE", d.max_queue, low=1, high=1 << 24),
            "access_log": env.get("SHIPYARD_ACCESS_LOG", "1").strip().lower() not in {"0", "false", "no", "off"},
            "graceful_timeout_s": _float(env, "SHIPYARD_GRACEFUL_TIMEOUT", d.graceful_timeout_s, low=0.0),
            "run_as": env.get("SHIPYARD_RUN_AS") or None,
            "capture_destination": env.get("SHIPYARD_CAPTURE_DESTINATION") or None,
            "capture_percent": _percent(env, "SHIPYARD_CAPTURE_PERCENT", d.capture_percent),
            "capture_queue": _int(env, "SHIPYARD_CAPTURE_QUEUE", d.capture_queue, low=1, high=1 << 24),
            "capture_flush_s": _float(env, "SHIPYARD_CAPTURE_FLUSH_SECONDS", d.capture_flush_s, low=0.0),
            "model_threads": _int(env, "SHIPYARD_MODEL_THREADS", d.model_threads, low=0, high=4096),
            "secrets": tuple(item.strip() for item in env.get("SHIPYARD_SECRETS", "").split(",") if item.strip()),
            "preload": _choice(env, "SHIPYARD_PRELOAD", d.preload),
            "region": env.get("SAGEMAKER_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        }
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown server settings: {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> ServerConfig:
        return replace(self, **changes)


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ShipyardError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ShipyardError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ShipyardError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):  # inf would pass the bound below and break int()/round() later
        raise ShipyardError(f"{name}={raw!r} must be a finite number")
    if not value >= low:
        raise ShipyardError(f"{name}={value} must be >= {low}")
    return value


_CHOICES = {"auto": "auto", "on": "on", "1": "on", "true": "on", "yes": "on", "off": "off", "0": "off",
            "false": "off", "no": "off"}  # fmt: skip


def _choice(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in _CHOICES:
        raise ShipyardError(f"{name}={raw!r}: use auto, on or off")
    return _CHOICES[raw]


def _percent(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default, low=0.0)
    if value > 100.0:
        raise ShipyardError(f"{name}={value:g} must be a percentage between 0 and 100")
    return value


def _level(raw: str | None) -> str:
    if not raw:
        return "INFO"
    level = raw.strip().upper()
    level = _TOOLKIT_LEVELS.get(level) or {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
    if level not in _TOOLKIT_LEVELS.values():  # logging would raise a bare ValueError at start-up
        names = ", ".join(_TOOLKIT_LEVELS.values())
        raise ShipyardError(f"log level {raw!r} is not one of {names} (or the toolkit's 10-50)")
    return level
