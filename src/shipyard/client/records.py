"""Batch transform's record handling, as SageMaker does it: split an input object, pack mini-batches, assemble.

The first piece of ``shipyard transform`` (issue 17; the job itself is not written yet). What SageMaker does
with one input object of a transform job (CreateTransformJob's ``TransformInput`` and ``TransformOutput``):

- ``SplitType``: ``None`` sends the whole object as one request; ``Line`` cuts it at each newline into records
  (``\\r\\n`` counts as one newline; an empty line is no record, a last line without a newline is one).
- ``BatchStrategy``: ``SingleRecord`` sends one record per request; ``MultiRecord`` as many records as fit in
  ``MaxPayloadInMB``, joined by newlines. A single record over the limit cannot be sent: it is an error
  naming the record, never a silently dropped row. ``MaxPayloadInMB`` 0 means no limit (SageMaker's value for
  a streamed payload); otherwise 1 to 100.
- ``AssembleWith``: ``Line`` writes every answer followed by a newline (none doubled); ``None`` concatenates the
  answers as they are. The output object is named ``<input>.out``.
- ``JoinSource: Input`` (:func:`join_input`): a JSON record that is an object gets the answer under
  ``SageMakerOutput``; any other JSON record becomes ``{"SageMakerInput": …, "SageMakerOutput": …}``; a CSV
  row gets the answer's columns appended after a comma. Other media types cannot be joined.

RecordIO and TFRecord are not split here yet: :func:`split_records` refuses them with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from shipyard.codecs.media import parse_media_type
from shipyard.errors import UsageError

__all__ = [
    "ASSEMBLE_WITH",
    "BATCH_STRATEGIES",
    "SPLIT_TYPES",
    "Batch",
    "TransformSettings",
    "assemble",
    "join_input",
    "output_name",
    "pack",
    "payload_limit",
    "split_records",
    "transform_settings",
]

SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("None", "Line")
MAX_PAYLOAD_MB = 100  # CreateTransformJob's upper bound for MaxPayloadInMB


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's body and the records it carries (``first`` is the index of its first record, from 0)."""

    body: bytes
    first: int
    records: int


def payload_limit(max_payload_mb: int) -> int | None:
    """The byte limit of ``MaxPayloadInMB`` (None: 0, no limit), checked against CreateTransformJob's range."""
    if isinstance(max_payload_mb, bool) or not isinstance(max_payload_mb, int):
        raise UsageError(f"MaxPayloadInMB must be a whole number of MB, not {max_payload_mb!r}")
    if not 0 <= max_payload_mb <= MAX_PAYLOAD_MB:
        raise UsageError(f"MaxPayloadInMB must be 0 (no limit) to {MAX_PAYLOAD_MB}, not {max_payload_mb}")
    return None if max_payload_mb == 0 else max_payload_mb * 1024 * 1024


def split_records(data: bytes, split_type: str) -> Iterator[bytes]:
    """The records of one input object under ``split_type`` (``None``: the object itself, even when empty)."""
    _check(split_type, SPLIT_TYPES, "SplitType")
    if split_type == "None":
        yield data
        return
    if split_type != "Line":
        raise UsageError(f"SplitType {split_type} is not supported yet; use Line or None")
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        line = data[start : end - 1] if end > start and data[end - 1 : end] == b"\r" else data[start:end]
        if line:
            yield line
        start = end + 1


def pack(records: Iterable[bytes], strategy: str, max_payload_mb: int) -> Iterator[Batch]:
    """Requests for ``records``: one each (``SingleRecord``) or as many as fit, newline-joined (``MultiRecord``).

    Raises :class:`~shipyard.errors.UsageError` for a record alone over the limit, after every batch before it."""
    _check(strategy, BATCH_STRATEGIES, "BatchStrategy")
    limit = payload_limit(max_payload_mb)
    pending: list[bytes] = []
    size = 0
    first = 0
    for index, record in enumerate(records):
        if limit is not None and len(record) > limit:
            if pending:
                yield Batch(b"\n".join(pending), first, len(pending))
            raise UsageError(
                f"record {index + 1} is {len(record) / 1048576:.2f} MB, over MaxPayloadInMB={max_payload_mb}: "
                "raise --max-payload-mb or split the input differently"
            )
        if strategy == "SingleRecord":
            yield Batch(record, index, 1)
            continue
        grown = size + len(record) + (1 if pending else 0)
        if pending and limit is not None and grown > limit:
            yield Batch(b"\n".join(pending), first, len(pending))
            pending, size, first = [], 0, index
            grown = len(record)
        if not pending:
            first = index
        pending.append(record)
        size = grown
    if pending:
        yield Batch(b"\n".join(pending), first, len(pending))


def assemble(answers: Iterable[bytes], assemble_with: str) -> Iterator[bytes]:
    """The output object's pieces, in order: each answer and a newline (``Line``, none doubled), or as is."""
    _check(assemble_with, ASSEMBLE_WITH, "AssembleWith")
    for answer in answers:
        yield answer
        if assemble_with == "Line" and not answer.endswith(b"\n"):
            yield b"\n"


def output_name(input_name: str) -> str:
    """The output object of an input object: ``<input>.out``, beside it in the output location."""
    return f"{input_name}.out"


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


@dataclass(frozen=True, slots=True)
class TransformSettings:
    """What one transform job runs with: MaxConcurrentTransforms, BatchStrategy, MaxPayloadInMB."""

    max_concurrent: int
    strategy: str
    max_payload_mb: int


def transform_settings(
    hints: object,
    *,
    max_concurrent: int | None = None,
    strategy: str | None = None,
    max_payload_mb: int | None = None,
) -> TransformSettings:
    """The job's own settings where given, else the container's ``GET /execution-parameters`` answer
    (``hints``: its parsed JSON, or None where the container has no such route), else SageMaker's defaults
    (1 transform at a time, MultiRecord, 6 MB). A hint of the wrong type or range is an error naming it."""
    if hints is not None and not isinstance(hints, dict):
        raise UsageError(f"/execution-parameters answered {type(hints).__name__}, not a JSON object")
    given = hints or {}
    concurrent = max_concurrent if max_concurrent is not None else given.get("MaxConcurrentTransforms", 1)
    if isinstance(concurrent, bool) or not isinstance(concurrent, int) or concurrent < 1:
        raise UsageError(f"MaxConcurrentTransforms must be a whole number ≥ 1, not {concurrent!r}")
    chosen = strategy if strategy is not None else _strategy_name(given.get("BatchStrategy", "MultiRecord"))
    _check(chosen, BATCH_STRATEGIES, "BatchStrategy")
    payload = max_payload_mb if max_payload_mb is not None else given.get("MaxPayloadInMB", 6)
    payload_limit(payload)  # checked there: a whole number from 0 to 100
    return TransformSettings(concurrent, chosen, payload)


def _strategy_name(value: object) -> str:
    """``MULTI_RECORD``/``SINGLE_RECORD`` (how containers spell it, this server included) as the API's name."""
    spelled = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}
    return spelled.get(value, value) if isinstance(value, str) else repr(value)


def join_input(record: bytes, answer: bytes, content_type: str) -> bytes:
    """``JoinSource: Input`` for one record and its answer, by the input's media type (JSON or CSV only)."""
    parsed = parse_media_type(content_type)
    media = parsed.essence if parsed is not None else ""
    if media in ("application/json", "application/jsonlines"):  # canonical spellings: aliases map to these
        try:
            given = orjson.loads(record)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"JoinSource Input: a record is not JSON ({exc})") from None
        try:
            output = orjson.loads(answer)
        except orjson.JSONDecodeError:
            output = answer.decode("utf-8", "replace").rstrip("\r\n")  # a non-JSON answer is kept as text
        joined = (
            {**given, "SageMakerOutput": output}
            if isinstance(given, dict)
            else {
                "SageMakerInput": given,
                "SageMakerOutput": output,
            }
        )
        return orjson.dumps(joined)
    if media == "text/csv":
        return record.rstrip(b"\r\n") + b"," + answer.rstrip(b"\r\n")
    raise UsageError(f"JoinSource Input joins JSON or CSV input only, not {content_type!r}")
