"""File sources: a file, a directory, a glob or a list resolved to one typed set, read by Ray Data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automodel.data._files import (
    FILE_COLUMN,
    ROW_COLUMN,
    parquet_rows,
    read_files,
    read_schema,
    reading,
    resolve_files,
)
from automodel.errors import DataError


@pytest.fixture()
def parts(tmp_path):
    """Three Parquet files (and a Spark-style _SUCCESS marker) and the same rows as three CSVs."""
    d = tmp_path / "table"
    d.mkdir()
    for i in range(3):
        frame = pd.DataFrame(
            {"a": np.arange(5.0) + 5 * i, "b": ["x", "y", None, "x", "z"], "y": [0, 1, 0, 1, 0]}
        )
        frame.to_parquet(d / f"part-{i}.parquet")
        frame.to_csv(tmp_path / f"c{i}.csv", index=False)
    (d / "_SUCCESS").write_text("")
    return tmp_path


def test_resolve_dir_glob_list(parts):
    by_dir = resolve_files(str(parts / "table"))
    assert by_dir.format == "parquet" and len(by_dir) == 3
    assert by_dir.names == ("part-0.parquet", "part-1.parquet", "part-2.parquet")
    assert parquet_rows(by_dir) == 15
    assert resolve_files(str(parts / "table" / "part-*.parquet")).paths == by_dir.paths
    deep = resolve_files(str(parts / "**" / "*.parquet"))
    assert deep.names == ("table/part-0.parquet", "table/part-1.parquet", "table/part-2.parquet")
    listed = resolve_files([str(parts / "c2.csv"), str(parts / "c0.csv")])
    assert listed.format == "csv" and listed.names == ("c0.csv", "c2.csv")
    single = resolve_files(str(parts / "c1.csv"))
    assert not single.multi and single.total_bytes > 0
    assert [f.name for f in read_schema(listed)] == ["a", "b", "y"]


@pytest.mark.parametrize(
    "source,message",
    [
        ("nope-*.parquet", "no Parquet or CSV files match"),
        ("missing.csv", "no such file or directory"),
        (".", "mixed file formats (csv and parquet)"),
        ("c0.txt", "expected a .csv or .parquet file"),
    ],
)
def test_resolve_errors_are_one_line(parts, monkeypatch, source, message):
    monkeypatch.chdir(parts)
    (parts / "c0.txt").write_text("a,b\n1,2\n")
    with pytest.raises(DataError) as err:
        resolve_files(source)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.ray
def test_read_with_positions_parquet_and_csv(parts, ray_cluster):
    for files in (resolve_files(str(parts / "table")), resolve_files(str(parts / "c*.csv"))):
        frame = read_files(files, positions=True).to_pandas().sort_values([FILE_COLUMN, ROW_COLUMN])
        assert len(frame) == 15
        assert frame.groupby(FILE_COLUMN)[ROW_COLUMN].apply(list).tolist() == [[0, 1, 2, 3, 4]] * 3
        assert frame["a"].tolist() == [float(v) for v in range(15)]
        assert read_files(files).count() == 15


@pytest.mark.ray
def test_unreadable_file_is_a_data_error(parts, ray_cluster):
    (parts / "table" / "part-9.parquet").write_bytes(b"garbage")
    files = resolve_files(str(parts / "table"))
    with pytest.raises(DataError) as err, reading(files):
        read_files(files, positions=True).count()
    assert "part-9.parquet" in str(err.value) and "\n" not in str(err.value)


def test_stream_off_reads_a_directory_in_memory(parts):
    from automodel.data import load_dataset, stream_files
    from automodel.spec import DataSpec

    spec = DataSpec(source=str(parts / "table"), target="y", stream="off")
    assert stream_files(spec) is None
    assert (
        stream_files(DataSpec(source=str(parts / "c0.csv"), target="y")) is None
    )  # small: in memory
    assert (
        stream_files(DataSpec(source=str(parts / "table"), target="y")) is not None
    )  # several files
    d = load_dataset(spec)
    assert d.rows == 15 and d.stream is None
