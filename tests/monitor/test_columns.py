"""monitor/columns.py: the one pyarrow → numpy conversion (the dtypes Clarify's typing rules read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import MonitorError
from shipyard.monitor.columns import column_array, feature_matrix, label_array, predicted_labels, read_columns
from shipyard.monitor.groups import CATEGORICAL, column_type
from shipyard.monitor.problems import Problems


def test_column_array_dtypes() -> None:
    assert column_array(pa.chunked_array([[1, 2, 3]], pa.int32())).dtype == np.int32
    with_gap = column_array(pa.chunked_array([[1, None, 3]]))
    assert with_gap.dtype == np.float64 and np.isnan(with_gap[1])
    flags = column_array(pa.chunked_array([[True, False]]))
    assert flags.dtype == bool and column_type(flags) == CATEGORICAL
    assert column_array(pa.chunked_array([[True, False]]), booleans="int").tolist() == [1, 0]
    assert column_array(pa.chunked_array([[True, None]])).tolist() == [True, None]
    text = column_array(pa.chunked_array([["a", None]]))
    assert text.dtype == object and text.tolist() == ["a", None]


def test_read_columns_reads_booleans_as_asked(tmp_path: Path) -> None:
    pq.write_table(pa.table({"flag": [True, False, True], "x": [1.0, 2.0, None]}), tmp_path / "d.parquet")
    columns = read_columns(tmp_path / "d.parquet", problems=Problems(), booleans="int")
    assert columns["flag"].dtype == np.int64 and np.isnan(columns["x"][2])
    assert read_columns(tmp_path / "d.parquet", columns=["flag"], problems=Problems())["flag"].dtype == bool


def test_feature_matrix_and_predictions(tmp_path: Path) -> None:
    matrix = feature_matrix({"a": np.array([1, 2]), "b": np.array(["1.5", None], dtype=object)}, ["b", "a"], tmp_path)
    assert matrix[0].tolist() == [1.5, 1.0] and np.isnan(matrix[1, 0])
    with pytest.raises(MonitorError, match="SHAP values need numeric features"):
        feature_matrix({"c": np.array(["x"], dtype=object)}, ["c"], tmp_path)
    assert label_array(np.array([1.0, 0.0])).dtype == np.int64
    assert label_array(np.array([True, False])).tolist() == label_array([True, False]).tolist() == [1, 0]
    assert predicted_labels(np.array([[0.2, 0.8], [0.9, 0.1]])).tolist() == [0.8, 0.1]
    assert predicted_labels(np.array([[0.1, 0.2, 0.7]])).tolist() == [2]
    assert predicted_labels(np.array([[1.0], [0.0]])).dtype == np.int64
