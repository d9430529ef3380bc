"""Batch transform's record handling (client/records.py) against SageMaker's documented semantics."""

from __future__ import annotations

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.server import Server
from shipyard.client.records import (
    TransformSettings,
    assemble,
    join_input,
    output_name,
    pack,
    payload_limit,
    split_records,
    transform_settings,
)
from shipyard.errors import UsageError

MB = 1024 * 1024


def test_line_split_cuts_at_newlines_and_drops_empty_lines() -> None:
    data = b"1,2\r\n3,4\n\n5,6"  # CRLF is one newline; an empty line is no record; the last line has no newline
    assert list(split_records(data, "Line")) == [b"1,2", b"3,4", b"5,6"]


def test_split_none_sends_the_whole_object() -> None:
    assert list(split_records(b"a\nb\n", "None")) == [b"a\nb\n"]
    assert list(split_records(b"", "None")) == [b""]


def test_unsupported_and_unknown_split_types_are_refused() -> None:
    with pytest.raises(UsageError, match="RecordIO is not supported yet"):
        list(split_records(b"x", "RecordIO"))
    with pytest.raises(UsageError, match="SplitType must be one of"):
        list(split_records(b"x", "line"))


def test_multi_record_packs_up_to_the_limit_and_keeps_order() -> None:
    record = b"x" * (MB // 4)  # four fit with three newlines? 4 × 0.25 MB + 3 bytes is over 1 MB: three fit
    batches = list(pack([record] * 7, "MultiRecord", 1))
    assert [(b.first, b.records) for b in batches] == [(0, 3), (3, 3), (6, 1)]
    assert all(len(b.body) <= MB for b in batches)
    assert batches[0].body == b"\n".join([record] * 3)


def test_a_batch_fills_the_limit_exactly() -> None:
    half = b"y" * ((MB - 1) // 2)
    rest = b"z" * (MB - len(half) - 1)  # with the newline between them: exactly 1 MB
    batches = list(pack([half, rest, b"q"], "MultiRecord", 1))
    assert len(batches[0].body) == MB
    assert [b.records for b in batches] == [2, 1]


def test_single_record_sends_one_record_per_request() -> None:
    batches = list(pack([b"a", b"b", b"c"], "SingleRecord", 6))
    assert [(b.body, b.first, b.records) for b in batches] == [(b"a", 0, 1), (b"b", 1, 1), (b"c", 2, 1)]


def test_a_record_over_the_limit_is_an_error_after_the_batches_before_it() -> None:
    sent = []
    with pytest.raises(UsageError, match=r"record 3 is 2\.00 MB, over MaxPayloadInMB=1"):
        for batch in pack([b"a", b"b", b"x" * (2 * MB), b"c"], "MultiRecord", 1):
            sent.append(batch)
    assert [b.body for b in sent] == [b"a\nb"]  # what came before is sent, nothing after is lost silently


def test_payload_limit_range() -> None:
    assert payload_limit(0) is None
    assert payload_limit(6) == 6 * MB
    for bad in (-1, 101, 1.5, True):
        with pytest.raises(UsageError):
            payload_limit(bad)  # type: ignore[arg-type]
    assert [b.records for b in pack([b"a"] * 5, "MultiRecord", 0)] == [5]  # 0: no limit


def test_assemble_line_ends_every_answer_once() -> None:
    assert b"".join(assemble([b"1", b"2\n", b"3"], "Line")) == b"1\n2\n3\n"
    assert b"".join(assemble([b"1", b"2\n"], "None")) == b"12\n"
    with pytest.raises(UsageError, match="AssembleWith"):
        list(assemble([b"1"], "line"))
    assert output_name("part-0001.csv") == "part-0001.csv.out"


@given(
    st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=60),
    st.sampled_from(["MultiRecord", "SingleRecord"]),
)
def test_split_then_pack_loses_and_reorders_nothing(records: list[bytes], strategy: str) -> None:
    data = b"\n".join(records)
    split = list(split_records(data, "Line"))
    assert split == records
    batches = list(pack(split, strategy, 1))
    rebuilt = [line for batch in batches for line in batch.body.split(b"\n")]
    assert rebuilt == records
    assert [b.first for b in batches] == [sum(b.records for b in batches[:i]) for i in range(len(batches))]


@pytest.mark.integration
def test_the_servers_own_execution_parameters_are_read_as_the_api_names_them(digits_server: Server) -> None:
    hints = httpx.get(f"{digits_server.url}/execution-parameters", timeout=10).json()
    settings = transform_settings(hints)
    assert settings.strategy == "MultiRecord"  # the digits model stacks rows: MULTI_RECORD
    assert settings.max_concurrent == hints["MaxConcurrentTransforms"] >= 1
    assert settings.max_payload_mb == hints["MaxPayloadInMB"] == 6


def test_the_jobs_settings_win_over_the_containers_hints() -> None:
    hints = {"MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 2}
    assert transform_settings(hints) == TransformSettings(4, "SingleRecord", 2)
    chosen = transform_settings(hints, max_concurrent=1, strategy="MultiRecord", max_payload_mb=0)
    assert chosen == TransformSettings(1, "MultiRecord", 0)
    assert transform_settings(None) == TransformSettings(1, "MultiRecord", 6)  # SageMaker's defaults


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ([1, 2], "not a JSON object"),
        ({"MaxConcurrentTransforms": 0}, "MaxConcurrentTransforms"),
        ({"MaxConcurrentTransforms": "2"}, "MaxConcurrentTransforms"),
        ({"BatchStrategy": "BATCH"}, "BatchStrategy"),
        ({"MaxPayloadInMB": 500}, "MaxPayloadInMB"),
    ],
)
def test_bad_hints_are_errors_that_name_them(hints: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        transform_settings(hints)


def test_join_json_object_gets_sagemaker_output() -> None:
    joined = join_input(b'{"id": 7, "features": [1, 2]}', b'{"label": 3}', "application/json")
    assert orjson.loads(joined) == {"id": 7, "features": [1, 2], "SageMakerOutput": {"label": 3}}


def test_join_json_non_object_is_wrapped_in_sagemaker_input() -> None:
    joined = join_input(b"[1, 2, 3]", b"5\n", "application/jsonlines")
    assert orjson.loads(joined) == {"SageMakerInput": [1, 2, 3], "SageMakerOutput": 5}
    text = join_input(b'"hi"', b"not json\n", "application/json; charset=utf-8")
    assert orjson.loads(text) == {"SageMakerInput": "hi", "SageMakerOutput": "not json"}


def test_join_csv_appends_the_answer_columns() -> None:
    assert join_input(b"id-1,0.5,0.25\r\n", b"3,0.9\n", "text/csv") == b"id-1,0.5,0.25,3,0.9"


def test_join_refuses_other_media_types_and_bad_json() -> None:
    with pytest.raises(UsageError, match="JSON or CSV input only"):
        join_input(b"x", b"y", "application/x-npy")
    with pytest.raises(UsageError, match="a record is not JSON"):
        join_input(b"{oops", b"1", "application/json")
