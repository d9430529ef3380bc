"""What a transform job is asked to be: :class:`TransformOptions`, validated once (the CLI's one input)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.client.records import ASSEMBLE_WITH, BATCH_STRATEGIES, SPLIT_TYPES, payload_limit
from shipyard.codecs.media import parse_media_type
from shipyard.errors import SpecError

__all__ = ["DEFAULT_INSTANCE_TYPE", "JOIN_SOURCES", "TARGETS", "TransformOptions", "content_type_of"]

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
JOIN_SOURCES = ("None", "Input")
TARGETS = ("local", "sagemaker")
_SUFFIX_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".json": "application/json",
}
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # CreateTransformJob's TransformJobName


def content_type_of(location: str) -> str | None:
    """The media type an input's suffix says (``rows.csv`` → text/csv); None when it says none."""
    name = location.rstrip("/")
    for suffix, media in _SUFFIX_TYPES.items():
        if name.endswith(suffix):
            return media
    return None


@dataclass(frozen=True)
class TransformOptions:
    """One batch transform: SageMaker's CreateTransformJob fields, by the names of the CLI's flags.

    ``strategy``, ``max_payload_mb`` and ``max_concurrent`` left None are the container's
    ``/execution-parameters`` answer (then SageMaker's defaults), as SageMaker does."""

    source: str
    input: str
    output: str
    target: str = "local"
    split_type: str = "Line"
    strategy: str | None = None
    max_payload_mb: int | None = None
    max_concurrent: int | None = None
    join_source: str = "None"
    input_filter: str | None = None
    output_filter: str | None = None
    assemble_with: str = "Line"
    content_type: str | None = None
    accept: str | None = None
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    environment: dict[str, str] = field(default_factory=dict)
    job_name: str | None = None
    timeout_s: float = 600.0  # SageMaker's default InvocationsTimeoutInSeconds
    max_retries: int = 3  # SageMaker's default InvocationsMaxRetries
    role_arn: str | None = None
    region: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # run this image instead of building one for a bundle
    base_image: str | None = None  # the base of the image built for a bundle
    workers: int | None = None  # the local container's SAGEMAKER_MODEL_SERVER_WORKERS
    startup_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        _one_of(self.target, TARGETS, "target")
        _one_of(self.split_type, SPLIT_TYPES, "split_type")
        if self.split_type not in ("Line", "None"):
            raise SpecError(f"split_type {self.split_type} is not supported yet; use Line or None", option="split_type")
        if self.strategy is not None:
            _one_of(self.strategy, BATCH_STRATEGIES, "strategy")
        _one_of(self.join_source, JOIN_SOURCES, "join_source")
        _one_of(self.assemble_with, ASSEMBLE_WITH, "assemble_with")
        if self.max_payload_mb is not None:
            try:
                payload_limit(self.max_payload_mb)
            except Exception as exc:
                raise SpecError(f"max_payload_mb: {exc}", option="max_payload_mb") from None
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SpecError(f"max_concurrent must be ≥ 1, not {self.max_concurrent}", option="max_concurrent")
        if not 1 <= self.instance_count <= 100:
            raise SpecError(f"instance_count must be 1 to 100, not {self.instance_count}", option="instance_count")
        if self.target == "local" and self.instance_count != 1:
            raise SpecError("instance_count: the local target runs one container", option="instance_count")
        if not self.instance_type.startswith("ml."):
            raise SpecError(f"instance_type {self.instance_type!r} is not an ml.* type", option="instance_type")
        if self.job_name is not None and not _JOB_NAME.match(self.job_name):
            raise SpecError(f"job_name {self.job_name!r}: letters, digits and -, 1 to 63", option="job_name")
        if self.target == "local" and not self.input.startswith("s3://") and not Path(self.input).exists():
            raise SpecError(f"input {self.input}: no such file or directory", option="input")
        if self.media_type is None:
            raise SpecError(
                f"content_type: the input {self.input} has no .csv/.jsonl/.json suffix; give --content-type",
                option="content_type",
            )
        for name in ("content_type", "accept"):
            value = getattr(self, name)
            if value is not None and parse_media_type(value) is None:
                raise SpecError(f"{name} {value!r} is not a media type", option=name)

    @property
    def media_type(self) -> str | None:
        """The input's Content-Type: as given, else from the input's suffix (a directory: its first file's)."""
        if self.content_type:
            return self.content_type
        found = content_type_of(self.input)
        if found is None and not self.input.startswith("s3://") and Path(self.input).is_dir():
            for path in sorted(Path(self.input).rglob("*")):
                if path.is_file() and (found := content_type_of(path.name)) is not None:
                    break
        return found

    @property
    def answer_type(self) -> str:
        """The Accept sent with each request: as given, else the input's media type."""
        return self.accept or self.media_type or "application/json"

    @property
    def per_record(self) -> bool:
        """Whether answers are taken apart record by record (a join or an output filter needs it)."""
        return self.join_source == "Input" or bool(self.output_filter and self.output_filter.strip() != "$")


def _one_of(value: str, allowed: tuple[str, ...], option: str) -> None:
    if value not in allowed:
        raise SpecError(f"{option} must be one of {', '.join(allowed)}, not {value!r}", option=option)
