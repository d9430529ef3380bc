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


def test_empty_and_unreadable_files_are_monitor_errors(tmp_path: Path) -> None:
    from shipyard.monitor.columns import read_table, schema_names

    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    for read in (schema_names, read_table):
        with pytest.raises(MonitorError, match=r"zero\.csv: cannot read .*the file is empty"):
            read(zero)  # type: ignore[operator]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(MonitorError, match=r"broken\.parquet: cannot read"):
        schema_names(broken)
    with pytest.raises(MonitorError, match="no such file"):
        schema_names(tmp_path / "none.csv")


def test_empty_csv_cells_are_missing_as_pandas_reads_them(tmp_path: Path) -> None:
    """An empty (or quoted empty) cell of a text column is None, not ''; an all-empty column is text, all None
    (pyarrow's null type would otherwise come out as the text 'None')."""
    from shipyard.monitor.columns import read_table, table_columns

    path = tmp_path / "d.csv"
    path.write_text('g,empty,x,y\nfemale,,1.5,1\n,,,0\n"",,2.5,1\n')
    columns = table_columns(read_table(path))
    assert columns["g"].tolist() == ["female", None, None]
    assert columns["empty"].dtype == object and columns["empty"].tolist() == [None, None, None]
    assert np.isnan(columns["x"][1]) and columns["y"].tolist() == [1, 0, 1]
    from shipyard.monitor.groups import facet_groups, parse_facet

    assert facet_groups(columns["g"], parse_facet("g")).names == ["female", "nan"]
    groups = facet_groups(columns["empty"], parse_facet("empty"))
    assert groups.names == ["nan"] and (groups.codes == -1).all()  # one missing value, its group empty
