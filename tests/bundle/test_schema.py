"""Schema.infer (from a save-time example) and Schema.coerce (every request, before the model runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.bundle.schema import Schema
from shipyard.codecs import decoder_for
from shipyard.errors import RequestError, SchemaMismatch

NAMES = ("a", "b", "c", "d")
TENSOR = Schema.infer(np.zeros((3, 4)), NAMES)
FRAME = pd.DataFrame({"age": [30, 40], "city": ["x", "y"], "score": [1.5, 2.5]})
COLUMNS = Schema.infer(FRAME)
TEXTS = Schema.infer(["hello", "world"])


def decode(body: bytes, content_type: str = "application/json") -> Any:
    codec, media = decoder_for(content_type)
    return codec.decode(body, media)


def coerce(schema: Schema, body: bytes, content_type: str = "application/json") -> tuple[Any, int]:
    return schema.coerce(decode(body, content_type))


# -- infer -------------------------------------------------------------------------------------------
def test_infer_tensor() -> None:
    assert TENSOR.kind == "tensor"
    assert TENSOR.dtype == "float64"
    assert TENSOR.shape == (-1, 4)
    assert TENSOR.names == NAMES
    assert TENSOR.allow_nan is False


def test_infer_drops_names_that_do_not_fit() -> None:
    assert Schema.infer(np.zeros((3, 4)), ("a", "b")).names == ()


def test_infer_nan_in_example_allows_nan() -> None:
    assert Schema.infer(np.array([[1.0, np.nan]])).allow_nan is True


def test_infer_dataframe_is_columns() -> None:
    assert COLUMNS.kind == "columns"
    assert COLUMNS.names == ("age", "city", "score")
    assert COLUMNS.dtypes == ("int64", "string", "float64")


def test_infer_records_is_columns() -> None:
    schema = Schema.infer([{"age": 1, "city": "x"}, {"age": 2, "city": "y"}])
    assert schema.kind == "columns"
    assert schema.names == ("age", "city")


def test_infer_texts() -> None:
    assert TEXTS.kind == "tensor"
    assert TEXTS.dtype == "string"
    assert TEXTS.shape == (-1,)
    assert Schema.infer("one text").shape == (-1,)


def test_infer_none_accepts_anything() -> None:
    schema = Schema.infer(None)
    assert schema.kind == "any"
    inputs, rows = schema.coerce([[1, 2], [3, 4]])
    assert rows == 2
    assert np.asarray(inputs).shape == (2, 2)


@pytest.mark.parametrize("schema", [TENSOR, COLUMNS, TEXTS, Schema.infer(np.zeros((2, 3, 5), dtype=np.int32))])
def test_dict_round_trip(schema: Schema) -> None:
    assert Schema.from_dict(schema.to_dict()) == schema


def test_describe() -> None:
    assert TENSOR.describe() == "float64[N × 4], features a, b, c, d"
    assert COLUMNS.describe() == "table: age:int64, city:string, score:float64"


# -- coerce: every JSON shape users send --------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b"[[1, 2, 3, 4], [5, 6, 7, 8]]", 2),  # bare rows
        (b"[1, 2, 3, 4]", 1),  # a single row, bare
        (b'{"instances": [[1, 2, 3, 4], [5, 6, 7, 8]]}', 2),
        (b'{"inputs": [[1, 2, 3, 4]]}', 1),
        (b'{"instances": [1, 2, 3, 4]}', 1),
        (b'[{"a": 1, "b": 2, "c": 3, "d": 4}, {"d": 8, "c": 7, "b": 6, "a": 5}]', 2),  # records, any key order
        (b'{"a": 1, "b": 2, "c": 3, "d": 4}', 1),  # a single record
        (b'{"instances": [{"a": 1, "b": 2, "c": 3, "d": 4, "extra": "ignored"}]}', 1),
    ],
)
def test_tensor_accepts_every_json_shape(body: bytes, rows: int) -> None:
    inputs, count = coerce(TENSOR, body)
    assert count == rows
    assert inputs.shape == (rows, 4)
    np.testing.assert_array_equal(inputs[0], [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"1,2,3,4\n5,6,7,8\n", "text/csv"),
        (b"a,b,c,d\n1,2,3,4\n5,6,7,8\n", "text/csv"),  # a header equal to the feature names is skipped
        (b"[1,2,3,4]\n[5,6,7,8]\n", "application/jsonlines"),
        (b'{"a":1,"b":2,"c":3,"d":4}\n{"a":5,"b":6,"c":7,"d":8}\n', "application/jsonlines"),
    ],
)
def test_tensor_accepts_other_codecs(body: bytes, content_type: str) -> None:
    inputs, count = coerce(TENSOR, body, content_type)
    assert count == 2
    np.testing.assert_array_equal(inputs, [[1, 2, 3, 4], [5, 6, 7, 8]])


def test_tensor_accepts_npy_batch_and_single_row() -> None:
    assert TENSOR.coerce(np.ones((3, 4)))[1] == 3
    single, rows = TENSOR.coerce(np.ones(4))
    assert rows == 1
    assert single.shape == (1, 4)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[1, 2, 3]]", "expected 4 features per row, got 3"),
        (b"[1, 2, 3, 4, 5]", "expected 4 features per row, got 5"),
        (b'[["x", 2, 3, 4]]', r"expected numbers \(float64\), got strings"),
        (b"[[true, false, true, true]]", r"expected numbers \(float64\), got bool"),
        (b'[{"a": 1, "b": 2, "c": 3}]', "record 0 is missing field 'd'"),
        (b'{"a": 1}', "missing field 'b'"),
        (b"[[1, 2, 3, 4], [1, 2]]", "not a regular array"),  # ragged
        (b"[[[1, 2, 3, 4]]]", "expected 2-D input"),  # nested one level too deep
        (b"[" * 100 + b"]" * 100, "not a regular array"),  # deep nesting
        (b"[]", "no rows"),
        (b'{"instances": []}', "no rows"),
        (b"42", "send a list of rows, each of 4 values"),
        (b"null", "send a list of rows"),
        (b"[[null, 1, 2, 3]]", r"value at \[0, 0\] is missing \(null\)"),
        (b'[{"a": 1, "b": 2, "c": 3, "d": 4}, [1, 2, 3, 4]]', "row 1 is not a record"),
    ],
)
def test_tensor_mismatch_names_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message) as info:
        coerce(TENSOR, body)
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    "array", [np.array([[np.nan, 1, 2, 3]]), np.array([[1, np.inf, 2, 3]]), np.full((2, 4), -np.inf)]
)
def test_tensor_refuses_non_finite_numbers(array: np.ndarray) -> None:
    with pytest.raises(SchemaMismatch, match=r"value at \[0, \d\] is not a finite number"):
        TENSOR.coerce(array)


@pytest.mark.parametrize("body", [b"nan,1,2,3", b"1,inf,2,3", b"1,2,1e999,3"])
def test_tensor_refuses_non_finite_csv(body: bytes) -> None:
    with pytest.raises(SchemaMismatch, match="not a finite number"):
        coerce(TENSOR, body, "text/csv")


def test_tensor_nan_allowed_when_the_example_had_nan() -> None:
    schema = Schema.infer(np.array([[1.0, np.nan]]))
    inputs, _ = schema.coerce(np.array([[np.nan, 2.0]]))
    assert np.isnan(inputs[0, 0])
    with pytest.raises(SchemaMismatch, match="not a finite number"):
        schema.coerce(np.array([[np.inf, 2.0]]))


def test_tensor_records_need_feature_names() -> None:
    with pytest.raises(SchemaMismatch, match="takes arrays, not records"):
        Schema.infer(np.zeros((2, 4))).coerce({"a": 1})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"1,2,3,4\n1,2,3\n", "CSV row 2 has 3 values, expected 4"),
        (b"1,2,,4\n", "CSV cells must be numbers"),
        (b"1;2;3;4\n", "CSV row 1 has 1 values, expected 4"),
        (b"a,b,c,d\n", "no rows after the CSV header"),
    ],
)
def test_tensor_csv_mismatch(body: bytes, message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message):
        coerce(TENSOR, body, "text/csv")


def test_int_tensor() -> None:
    schema = Schema.infer(np.zeros((2, 2), dtype=np.int64))
    inputs, _ = coerce(schema, b"1,2\n3,4\n", "text/csv")
    assert inputs.dtype.kind == "i"
    with pytest.raises(SchemaMismatch, match="expected integers"):
        coerce(schema, b"[[1.5, 2]]")
    with pytest.raises(SchemaMismatch, match="CSV cells must be integers"):
        coerce(schema, b"1.5,2\n", "text/csv")
    with pytest.raises(SchemaMismatch, match="CSV cells must be integers"):
        coerce(schema, b"99999999999999999999999,1\n", "text/csv")


def test_texts() -> None:
    inputs, rows = coerce(TEXTS, b'["a", "b", "c"]')
    assert rows == 3
    assert list(inputs) == ["a", "b", "c"]
    assert coerce(TEXTS, b'"just one"')[1] == 1
    assert list(coerce(TEXTS, b"a\nb\n", "text/csv")[0]) == ["a", "b"]
    with pytest.raises(SchemaMismatch, match="expected strings"):
        coerce(TEXTS, b"[1, 2]")
    with pytest.raises(SchemaMismatch, match="expected 1-D input"):
        coerce(TEXTS, b'[["a"]]')
    with pytest.raises(SchemaMismatch, match="one value per CSV line"):
        coerce(TEXTS, b"a,b\n", "text/csv")


# -- coerce: columns (a DataFrame model) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'[{"age": 1, "city": "p", "score": 2.5}]', "application/json"),
        (b'{"age": 1, "city": "p", "score": 2.5}', "application/json"),
        (b'{"instances": [{"age": 1, "city": "p", "score": 2.5}]}', "application/json"),
        (b'[[1, "p", 2.5]]', "application/json"),
        (b'[1, "p", 2.5]', "application/json"),
        (b"1,p,2.5\n", "text/csv"),
        (b"age,city,score\n1,p,2.5\n", "text/csv"),
        (b'{"age": 1, "city": "p", "score": 2.5}\n', "application/jsonlines"),
    ],
)
def test_columns_accept(body: bytes, content_type: str) -> None:
    frame, rows = coerce(COLUMNS, body, content_type)
    assert rows == 1
    assert list(frame.columns) == ["age", "city", "score"]
    assert frame.iloc[0].tolist() == [1, "p", 2.5]
    assert str(frame["age"].dtype) == "int64"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'[{"age": 1, "city": "p"}]', "missing field 'score'"),
        (b'[{"age": 1.5, "city": "p", "score": 1}]', "field 'age' must be integers"),
        (b'[{"age": "old", "city": "p", "score": 1}]', "field 'age' must be integers, got 'old'"),
        (b'[{"age": 1, "city": 7, "score": 1}]', "field 'city' must be a string"),
        (b'[{"age": null, "city": "p", "score": 1}]', "field 'age' is missing a value"),
        (b'[{"age": 1, "city": "p", "score": [1]}]', "field 'score' must be numbers"),
        (b'[{"age": 1, "city": "p", "score": 1e999}]', "not valid JSON"),
        (b'[{"age": 1e30, "city": "p", "score": 1}]', "field 'age' .*out of range for int64"),
        (b"[[1, 2]]", "expected 3 values per row"),
        (b"[]", "expected rows or records"),
        (b"7", "expected rows or records"),
        (b'[{"age": 1, "city": "p", "score": 1}, [1, "p", 1]]', "mixed records and arrays"),
    ],
)
def test_columns_mismatch_names_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        coerce(COLUMNS, body)
    assert info.value.http_status == 400


def test_columns_refuse_infinity_from_csv() -> None:
    with pytest.raises(SchemaMismatch, match="field 'score' holds a value that is not a finite number"):
        coerce(COLUMNS, b"1,p,inf\n", "text/csv")
