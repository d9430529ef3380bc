"""What to train and how: one :class:`TrainOptions`, built by the CLI and by :func:`shipyard.train` alike.

Validated once, when made (``__post_init__``), with every check that needs no AWS and no engine: the script
exists inside its source folder, channel names and paths, hyperparameter names, metric regexes (compiled, one
group), durations, instance count, the run name. :meth:`TrainOptions.parse` takes the user-facing forms, the same
for the command line and the Python API: ``data=["train=PATH", "validation=s3://…"]`` or a mapping,
``hp=["epochs=10"]`` or a mapping, ``metrics=["accuracy", "loss=loss: ([0-9.]+)"]`` or a mapping,
``max_runtime="1h"``, ``max_wait="2h"``.

A :class:`~shipyard.errors.SpecError` names the option at fault (``option``, the field's name); the CLI shows it
as its flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from shipyard.errors import SpecError, UsageError
from shipyard.experiments.record import check_run_name
from shipyard.units import parse_duration

__all__ = [
    "DEFAULT_INSTANCE_TYPE",
    "DEFAULT_MAX_RUNTIME_S",
    "HyperValue",
    "TrainOptions",
    "parse_pairs",
]

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_MAX_RUNTIME_S = 86400  # SageMaker's default StoppingCondition.MaxRuntimeInSeconds: one day
TARGETS = ("local", "sagemaker")
HyperValue = str | int | float | bool
# A channel's name: SageMaker's ChannelName pattern ([A-Za-z0-9\.\-_]+, ≤ 64).
_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
# A hyperparameter's name becomes SM_HP_<NAME> and --name: keep it to what both can carry.
_HP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,255}$")
_METRIC_NAME = re.compile(r"^.{1,255}$")


def parse_pairs(items: Iterable[str] | Mapping[str, Any] | None, *, option: str, what: str) -> dict[str, Any]:
    """``["k=v", ...]`` or a mapping → a dict; a SpecError naming ``option`` for an item without ``=``."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option} {item!r}: expected {what}", option=option)
        if key.strip() in pairs:
            raise SpecError(f"{option} {key.strip()!r} is given twice", option=option)
        pairs[key.strip()] = value
    return pairs


@dataclass(frozen=True)
class TrainOptions:
    """A training run, as asked. ``entry`` is relative to ``source_dir`` (as SageMaker's ``sagemaker_program``)."""

    entry: str
    source_dir: Path
    channels: dict[str, str] = field(default_factory=dict)  # name -> local path or s3:// URI
    hyperparameters: dict[str, HyperValue] = field(default_factory=dict)
    target: str = "local"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    spot: bool = False
    max_runtime_s: int = DEFAULT_MAX_RUNTIME_S
    max_wait_s: int | None = None  # spot only; ≥ max_runtime_s
    metric_definitions: dict[str, str | None] = field(default_factory=dict)  # name -> regex (None: log_metric's)
    requirements: Path | None = None  # default: SOURCE_DIR/requirements.txt when there is one
    name: str | None = None  # the run's (and training job's) name; default: EXPERIMENT-YYYYmmdd-HHMMSS
    experiment: str | None = None  # default: the source folder's name
    handler: Path | None = None  # the inference script to wrap a non-bundle model with
    checkpoints: str | None = None  # a local folder or s3:// URI synced with /opt/ml/checkpoints
    output: str | None = None  # sagemaker: s3://BUCKET/PREFIX for the job's output (default: Shipyard's bucket)
    role: str | None = None  # sagemaker: an existing execution role ARN (default: a least-privilege one is made)
    base: str | None = None  # the base image (default: `shipyard build`'s)
    env: dict[str, str] = field(default_factory=dict)  # the job's Environment
    volume_size_gb: int = 30
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_entry()
        self._check_channels()
        for key in self.hyperparameters:
            if not _HP_NAME.match(key):
                raise SpecError(
                    f"hyperparameter name {key!r}: use letters, digits, '_', '.', '-', starting with a letter or '_'",
                    option="hyperparameters",
                )
        self._check_metrics()
        self._check_run()

    def _check_entry(self) -> None:
        if self.target not in TARGETS:
            raise SpecError(f"target {self.target!r}: use one of {', '.join(TARGETS)}", option="target")
        source = self.source_dir
        if not source.is_dir():
            raise SpecError(f"source_dir {str(source)!r} is not a folder", option="source_dir")
        script = source / self.entry
        if Path(self.entry).is_absolute() or ".." in Path(self.entry).parts or not script.is_file():
            raise SpecError(
                f"the training script {self.entry!r} is not a file inside the source folder {str(source)!r}",
                option="entry",
            )
        if self.requirements is not None and not self.requirements.is_file():
            raise SpecError(f"requirements {str(self.requirements)!r} is not a file", option="requirements")
        if self.handler is not None and not self.handler.is_file():
            raise SpecError(f"handler {str(self.handler)!r} is not a file", option="handler")

    def _check_channels(self) -> None:
        for name, uri in self.channels.items():
            if not _CHANNEL.match(name):
                raise SpecError(
                    f"channel name {name!r}: up to 64 letters, digits, '.', '-' or '_' (SageMaker's ChannelName)",
                    option="channels",
                )
            if uri.startswith("s3://"):
                if len(uri) <= len("s3://") or uri[5:].startswith("/"):
                    raise SpecError(f"channel {name}: {uri!r} is not an s3://BUCKET/PREFIX URI", option="channels")
            elif "://" in uri:
                raise SpecError(f"channel {name}: {uri!r}: give a local path or an s3:// URI", option="channels")
            elif not Path(uri).expanduser().exists():
                raise SpecError(f"channel {name}: {uri!r} does not exist", option="channels")

    def _check_metrics(self) -> None:
        for name, regex in self.metric_definitions.items():
            if not _METRIC_NAME.match(name) or name.strip() != name:
                raise SpecError(f"metric name {name!r}: 1 to 255 characters, no edge spaces", option="metrics")
            if regex is None:
                continue
            try:
                groups = re.compile(regex).groups
            except re.error as exc:
                raise SpecError(f"metric {name}: regex {regex!r} does not compile ({exc})", option="metrics") from None
            if groups < 1:
                raise SpecError(
                    f"metric {name}: regex {regex!r} needs a group around the value, e.g. 'loss: ([0-9.]+)'",
                    option="metrics",
                )

    def _check_run(self) -> None:
        if self.instance_count < 1:
            raise SpecError(f"instance_count {self.instance_count}: at least 1", option="instance_count")
        if self.target == "local" and self.instance_count != 1:
            raise SpecError(
                "instance_count: the local target runs one container (one host); use --target sagemaker for more",
                option="instance_count",
            )
        if self.max_runtime_s < 1:
            raise SpecError(f"max_runtime {self.max_runtime_s}s: at least one second", option="max_runtime")
        if self.max_wait_s is not None:
            if not self.spot:
                raise SpecError("max_wait applies to spot training only: add --spot", option="max_wait")
            if self.max_wait_s < self.max_runtime_s:
                raise SpecError(
                    f"max_wait ({self.max_wait_s}s) must be at least max_runtime ({self.max_runtime_s}s), as "
                    "SageMaker requires",
                    option="max_wait",
                )
        if self.volume_size_gb < 1:
            raise SpecError(f"volume_size_gb {self.volume_size_gb}: at least 1", option="volume_size_gb")
        if self.name is not None:
            try:
                check_run_name(self.name)
            except UsageError as exc:
                raise SpecError(str(exc), option="name") from None

    @property
    def script(self) -> Path:
        return self.source_dir / self.entry

    @property
    def requirements_file(self) -> Path | None:
        """The requirements to install into the training image: the given file, else the source folder's."""
        if self.requirements is not None:
            return self.requirements
        found = self.source_dir / "requirements.txt"
        return found if found.is_file() else None

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.source_dir.resolve().name or "default"

    @classmethod
    def parse(
        cls,
        script: str | Path,
        *,
        source_dir: str | Path | None = None,
        data: Iterable[str] | Mapping[str, str] | None = None,
        hp: Iterable[str] | Mapping[str, HyperValue] | None = None,
        metrics: Iterable[str] | Mapping[str, str | None] | None = None,
        max_runtime: str | timedelta | int | None = None,
        max_wait: str | timedelta | int | None = None,
        env: Iterable[str] | Mapping[str, str] | None = None,
        **rest: Any,
    ) -> TrainOptions:
        """The user-facing forms (see the module's docstring) → options. ``script`` is a path; with
        ``source_dir`` it may also be relative to it (``train.py`` in ``src/``)."""
        script_path = Path(script).expanduser()
        if source_dir is None:
            source = script_path.parent
            entry = script_path.name
        else:
            source = Path(source_dir).expanduser()
            inside = script_path if not script_path.is_absolute() else None
            if script_path.is_absolute() or not (source / script_path).is_file():
                try:
                    inside = script_path.resolve().relative_to(source.resolve())
                except ValueError:
                    raise SpecError(
                        f"the training script {str(script)!r} is not inside the source folder {str(source)!r}",
                        option="entry",
                    ) from None
            entry = (inside or script_path).as_posix()
        metric_definitions: dict[str, str | None] = {}
        if isinstance(metrics, Mapping):
            metric_definitions = dict(metrics)
        else:
            for item in metrics or ():
                name, sep, regex = item.partition("=")
                metric_definitions[name.strip()] = regex if sep else None
        return cls(
            entry=entry,
            source_dir=source,
            channels={k: str(v) for k, v in parse_pairs(data, option="channels", what="NAME=PATH|s3://…").items()},
            hyperparameters=parse_pairs(hp, option="hyperparameters", what="NAME=VALUE"),
            metric_definitions=metric_definitions,
            max_runtime_s=_seconds(max_runtime, "max_runtime") or DEFAULT_MAX_RUNTIME_S,
            max_wait_s=_seconds(max_wait, "max_wait"),
            env={k: str(v) for k, v in parse_pairs(env, option="env", what="KEY=VALUE").items()},
            **rest,
        )


def _seconds(value: str | timedelta | int | None, option: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    return round(parse_duration(value, option=option, minimum_s=1).total_seconds())
