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
| SHIPYARD_MAX_HEADER_BYTES             | 65536            | request line + headers before 431         |
| SHIPYARD_HEADER_TIMEOUT               | 60               | seconds from connecting to a complete request head |
| SHIPYARD_MAX_CONNECTIONS              | 0 (from nofile)  | open connections per worker before 503    |
| SHIPYARD_RUN_AS                       | (none)           | user the workers run as (root drops to it)|
| SHIPYARD_CAPTURE_DESTINATION          | (off)            | data capture: a directory or s3://bucket/prefix |
| SHIPYARD_CAPTURE_PERCENT              | 100              | share of invocations captured (0-100)     |
| SHIPYARD_CAPTURE_QUEUE                | 10000            | captured records waiting to be written; more are dropped |
| SHIPYARD_CAPTURE_FLUSH_SECONDS        | 60               | s3:// destinations: seconds between uploads |
| SHIPYARD_MODEL_THREADS                | cores ÷ workers  | torch threads per worker (torch flavors)  |
| SHIPYARD_SECRETS                      | (none)           | ``VAR=NAME,...``: secrets put in os.environ at start |
| SAGEMAKER_REGION / AWS_REGION         | (boto3's)        | region of those secrets                   |
| SHIPYARD_PRELOAD                      | auto             | load the model before forking: auto, on, off |
| SHIPYARD_JSON_ENVELOPE                | (the bundle's)   | JSON answers as ``{"predictions": ...}`` (1) or bare (0) |
| SHIPYARD_MODEL_PROCESS                | 1                | run the model in a child process of each worker |
| SHIPYARD_OVERRUN_GRACE                | 2                | seconds past the timeout before a stuck model is replaced |
| SHIPYARD_FAULT_INJECTION              | 0                | a route that leaks memory, for verify    |
| SHIPYARD_STREAM_ROWS                  | 0 (off)          | a bundle's answers streamed, N rows a chunk |
| SAGEMAKER_MULTI_MODEL                 | false            | multi-model endpoint (serving/multimodel.py) |
| SHIPYARD_MODELS_DIR                   | /opt/ml/models   | multi-model: target models' directory |
| SHIPYARD_MODEL_MEMORY_MB              | 0 (auto)         | multi-model: models' memory budget (70 % of the limit) |
| SHIPYARD_MODEL_REGISTRY               | (a temp dir)     | multi-model: registered models, shared |

:data:`ENV` names the variables of each setting (the first one set wins) and :data:`LIMITS` the range of the
numeric ones; ``shipyard serve`` takes both from here, so each of its options defaults to the variable the
container reads, and checks the same range.

The limits on a ``model.tar.gz`` that Shipyard extracts or reads (``shipyard inspect``, ``shipyard serve
BUNDLE``, the local target) are read by :meth:`ArchiveLimits.from_env`, from :data:`ARCHIVE_ENV`:

| variable                              | default          | meaning                                   |
|---------------------------------------|------------------|-------------------------------------------|
| SHIPYARD_MAX_BUNDLE_BYTES             | 68719476736      | bytes an archive may extract to (64 GiB)  |
| SHIPYARD_MAX_BUNDLE_MEMBERS           | 100000           | members (files, directories, links)       |
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from shipyard.errors import SettingsError

__all__ = [
    "ARCHIVE_ENV",
    "ENV",
    "LIMITS",
    "ArchiveLimits",
    "ServerConfig",
    "parse_auto_bool",
    "parse_bool",
    "usable_cores",
]

_TOOLKIT_LEVELS = {"10": "DEBUG", "20": "INFO", "30": "WARNING", "40": "ERROR", "50": "CRITICAL"}

# The environment variables of each setting, the first one set (and not blank) winning.
ENV: dict[str, tuple[str, ...]] = {
    "model_dir": ("SHIPYARD_MODEL_DIR", "SM_MODEL_DIR"),
    "host": ("SHIPYARD_HOST",),
    "port": ("SAGEMAKER_BIND_TO_PORT",),
    "workers": ("SAGEMAKER_MODEL_SERVER_WORKERS",),
    "timeout_s": ("SAGEMAKER_MODEL_SERVER_TIMEOUT",),
    "max_payload_mb": ("SAGEMAKER_MAX_PAYLOAD_IN_MB",),
    "default_accept": ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",),
    "program": ("SAGEMAKER_PROGRAM",),
    "log_level": ("SHIPYARD_LOG_LEVEL", "SAGEMAKER_CONTAINER_LOG_LEVEL"),
    "max_batch_size": ("SHIPYARD_MAX_BATCH_SIZE",),
    "max_batch_delay_ms": ("SHIPYARD_MAX_BATCH_DELAY_MS",),
    "max_queue": ("SHIPYARD_MAX_QUEUE",),
    "access_log": ("SHIPYARD_ACCESS_LOG",),
    "graceful_timeout_s": ("SHIPYARD_GRACEFUL_TIMEOUT",),
    "max_header_bytes": ("SHIPYARD_MAX_HEADER_BYTES",),
    "header_timeout_s": ("SHIPYARD_HEADER_TIMEOUT",),
    "max_connections": ("SHIPYARD_MAX_CONNECTIONS",),
    "run_as": ("SHIPYARD_RUN_AS",),
    "capture_destination": ("SHIPYARD_CAPTURE_DESTINATION",),
    "capture_percent": ("SHIPYARD_CAPTURE_PERCENT",),
    "capture_queue": ("SHIPYARD_CAPTURE_QUEUE",),
    "capture_flush_s": ("SHIPYARD_CAPTURE_FLUSH_SECONDS",),
    "model_threads": ("SHIPYARD_MODEL_THREADS",),
    "secrets": ("SHIPYARD_SECRETS",),
    "region": ("SAGEMAKER_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    "preload": ("SHIPYARD_PRELOAD",),
    "json_envelope": ("SHIPYARD_JSON_ENVELOPE",),
    "model_process": ("SHIPYARD_MODEL_PROCESS",),
    "overrun_grace_s": ("SHIPYARD_OVERRUN_GRACE",),
    "fault_injection": ("SHIPYARD_FAULT_INJECTION",),
    "stream_rows": ("SHIPYARD_STREAM_ROWS",),
    "multi_model": ("SAGEMAKER_MULTI_MODEL",),
    "models_dir": ("SHIPYARD_MODELS_DIR",),
    "model_memory_mb": ("SHIPYARD_MODEL_MEMORY_MB",),
    "model_registry": ("SHIPYARD_MODEL_REGISTRY",),
}

# Accepted ranges of the numeric settings (inclusive; None: unbounded). Floats must also be finite.
LIMITS: dict[str, tuple[float, float | None]] = {
    "port": (0, 65535),
    "workers": (1, 512),
    "timeout_s": (0.001, None),
    "max_payload_mb": (0.000001, None),
    "max_batch_size": (1, 1 << 20),
    "max_batch_delay_ms": (0.0, None),
    "max_queue": (1, 1 << 24),
    "graceful_timeout_s": (0.0, None),
    "max_header_bytes": (1024, 1 << 26),
    "header_timeout_s": (0.001, None),
    "max_connections": (0, 1 << 24),
    "capture_percent": (0.0, 100.0),
    "capture_queue": (1, 1 << 24),
    "capture_flush_s": (0.0, None),
    "model_threads": (0, 4096),
    "overrun_grace_s": (0.0, None),
    "stream_rows": (0, 1 << 24),
    "model_memory_mb": (0.0, None),
}

# The limits on an archive Shipyard opens (not server settings: `shipyard serve` has no option for them).
ARCHIVE_ENV: dict[str, tuple[str, ...]] = {
    "max_bytes": ("SHIPYARD_MAX_BUNDLE_BYTES",),
    "max_members": ("SHIPYARD_MAX_BUNDLE_MEMBERS",),
}
_ARCHIVE_LIMITS: dict[str, tuple[float, float | None]] = {"max_bytes": (1, None), "max_members": (1, None)}

# The spellings of a yes/no setting: the ones click accepts for a flag's environment variable, so the
# container and `shipyard serve` read SHIPYARD_ACCESS_LOG alike.
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


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
    max_header_bytes: int = 64 * 1024  # request line + headers; more is answered 431 (serving/protocol.py)
    header_timeout_s: float = 60.0  # from connecting to a complete request head
    max_connections: int = 0  # per worker; 0: from the open-file limit (protocol.default_max_connections)
    run_as: str | None = None
    capture_destination: str | None = None  # None: data capture off (see serving/capture.py)
    capture_percent: float = 100.0
    capture_queue: int = 10_000
    capture_flush_s: float = 60.0
    model_threads: int = 0  # 0: usable cores ÷ workers
    secrets: tuple[str, ...] = ()  # "VAR=NAME" entries of SHIPYARD_SECRETS (names only; see serving/secrets.py)
    region: str | None = None
    preload: str = "auto"  # load the model once before forking the workers: auto (by flavor) | on | off
    json_envelope: bool | None = None  # JSON answers in {"predictions": ...}; None: as the bundle's manifest says
    model_process: bool = True  # the model in a child process of each worker (serving/compute.py)
    overrun_grace_s: float = 2.0  # a model call this long past timeout_s gets its process replaced
    fault_injection: bool = False  # the route shipyard verify uses to leak memory in the model process
    stream_rows: int = 0  # > 0: a saved bundle's answers streamed, predicted and sent this many rows at a time
    multi_model: bool = False  # a multi-model endpoint: models registered with POST /models (serving/multimodel.py)
    models_dir: str = "/opt/ml/models"  # multi-model: X-Amzn-SageMaker-Target-Model names a file or directory here
    model_memory_mb: float = 0.0  # multi-model: memory budget of the loaded models; 0: from the container's limit
    model_registry: str | None = None  # multi-model: the registered models' records (None: the supervisor's temp dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Build the config from ``env`` (default: ``os.environ``); ``overrides`` win over it."""
        env = os.environ if env is None else env
        d = cls()

        def raw(name: str) -> str | None:
            return _first(env, ENV[name])

        def whole(name: str, default: int) -> int:
            return _int(env, ENV[name], default, LIMITS[name])

        def number(name: str, default: float) -> float:
            return _float(env, ENV[name], default, LIMITS[name])

        values: dict[str, Any] = {
            "model_dir": raw("model_dir") or d.model_dir,
            "host": raw("host") or d.host,
            "port": whole("port", d.port),
            "workers": whole("workers", usable_cores()),
            "timeout_s": number("timeout_s", d.timeout_s),
            "max_payload_bytes": int(number("max_payload_mb", d.max_payload_bytes / (1024 * 1024)) * 1024 * 1024),
            "default_accept": raw("default_accept"),
            "program": raw("program") or d.program,
            "log_level": _level(raw("log_level")),
            "max_batch_size": whole("max_batch_size", d.max_batch_size),
            "max_batch_delay_ms": number("max_batch_delay_ms", d.max_batch_delay_ms),
            "max_queue": whole("max_queue", d.max_queue),
            "access_log": _bool(env, ENV["access_log"], d.access_log),
            "graceful_timeout_s": number("graceful_timeout_s", d.graceful_timeout_s),
            "max_header_bytes": whole("max_header_bytes", d.max_header_bytes),
            "header_timeout_s": number("header_timeout_s", d.header_timeout_s),
            "max_connections": whole("max_connections", d.max_connections),
            "run_as": raw("run_as"),
            "capture_destination": raw("capture_destination"),
            "capture_percent": number("capture_percent", d.capture_percent),
            "capture_queue": whole("capture_queue", d.capture_queue),
            "capture_flush_s": number("capture_flush_s", d.capture_flush_s),
            "model_threads": whole("model_threads", d.model_threads),
            "secrets": tuple(item.strip() for item in (raw("secrets") or "").split(",") if item.strip()),
            "preload": _choice(env, ENV["preload"], d.preload),
            "region": raw("region"),
            "json_envelope": _bool(env, ENV["json_envelope"], None),
            "model_process": _bool(env, ENV["model_process"], d.model_process),
            "overrun_grace_s": number("overrun_grace_s", d.overrun_grace_s),
            "fault_injection": _bool(env, ENV["fault_injection"], d.fault_injection),
            "stream_rows": whole("stream_rows", d.stream_rows),
            "multi_model": _bool(env, ENV["multi_model"], d.multi_model),
            "models_dir": raw("models_dir") or d.models_dir,
            "model_memory_mb": number("model_memory_mb", d.model_memory_mb),
            "model_registry": raw("model_registry"),
        }
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown server settings: {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> ServerConfig:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What a ``model.tar.gz`` may extract to, checked against its headers before a byte is written and counted
    again while it is written (see ``bundle/untrusted.py``).

    64 GiB is twice what a real-time endpoint holds without changing its storage: SageMaker asks for a larger
    ``VolumeSizeInGB`` past 30 GB of model, and recommends uncompressed artifacts (``S3Prefix``, no archive) for
    large models, so a bigger ``model.tar.gz`` is a mistake or an attack. 100,000 members is far more than any
    model with its code holds (a Hugging Face snapshot has tens), and bounds the memory the member list takes.
    """

    max_bytes: int = 64 * 1024**3
    max_members: int = 100_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiveLimits:
        """The limits from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            max_bytes=_int(env, ARCHIVE_ENV["max_bytes"], d.max_bytes, _ARCHIVE_LIMITS["max_bytes"]),
            max_members=_int(env, ARCHIVE_ENV["max_members"], d.max_members, _ARCHIVE_LIMITS["max_members"]),
        )


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    found = _named(env, names)
    return found[1] if found is not None else None


def _named(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of ``names`` that is set and not blank, and its value."""
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value
    return None


def _int(env: Mapping[str, str], names: tuple[str, ...], default: int, limits: tuple[float, float | None]) -> int:
    found = _named(env, names)
    if found is None:
        return default
    name, raw = found
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer", setting=name) from None
    low, high = limits
    if not (low <= value and (high is None or value <= high)):
        raise SettingsError(f"{name}={value} is out of range [{_show(low)}, {_show(high)}]", setting=name)
    return value


def _float(env: Mapping[str, str], names: tuple[str, ...], default: float, limits: tuple[float, float | None]) -> float:
    found = _named(env, names)
    if found is None:
        return default
    name, raw = found
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number", setting=name) from None
    if not math.isfinite(value):  # inf would pass the bound below and break int()/round() later
        raise SettingsError(f"{name}={raw!r} must be a finite number", setting=name)
    low, high = limits
    if not (low <= value and (high is None or value <= high)):
        bounds = f">= {_show(low)}" if high is None else f"between {_show(low)} and {_show(high)}"
        raise SettingsError(f"{name}={value:g} must be {bounds}", setting=name)
    return value


def _show(limit: float | None) -> str:
    if limit is None:
        return "∞"
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


def parse_bool(raw: str) -> bool | None:
    """A yes/no setting's value (``1``/``0``, ``on``/``off``, ``true``/``false``, ``yes``/``no``); None if neither."""
    value = raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _bool(env: Mapping[str, str], names: tuple[str, ...], default: bool | None) -> bool | None:
    found = _named(env, names)
    if found is None:
        return default
    name, raw = found
    value = parse_bool(raw)
    if value is None:
        raise SettingsError(f"{name}={raw!r}: use 1 or 0 (also on/off, true/false, yes/no)", setting=name)
    return value


def parse_auto_bool(raw: str) -> str | None:
    """An auto/on/off setting's value: ``auto``, else a yes/no spelling (:func:`parse_bool`) as ``on`` or ``off``;
    None if neither."""
    if raw.strip().lower() == "auto":
        return "auto"
    value = parse_bool(raw)
    return None if value is None else "on" if value else "off"


def _choice(env: Mapping[str, str], names: tuple[str, ...], default: str) -> str:
    found = _named(env, names)
    if found is None:
        return default
    name, raw = found
    value = parse_auto_bool(raw)
    if value is None:
        raise SettingsError(f"{name}={raw.strip().lower()!r}: use auto, on or off", setting=name)
    return value


def _level(raw: str | None) -> str:
    if not raw:
        return "INFO"
    level = raw.strip().upper()
    level = _TOOLKIT_LEVELS.get(level) or {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
    if level not in _TOOLKIT_LEVELS.values():  # logging would raise a bare ValueError at start-up
        names = ", ".join(_TOOLKIT_LEVELS.values())
        raise SettingsError(f"log level {raw!r} is not one of {names} (or the toolkit's 10-50)")
    return level
