"""Reading the input: one light read task a file, streaming it in Arrow batches.

The file set comes from the data stage's resolver (``automodel.data._files.resolve_files``); this
is only its read step with what batch scoring needs that ``read_files`` does not offer:

* a CPU share for the read tasks (Ray 2.60's ``read_parquet`` lists the files in a task of a
  whole CPU that nothing can lower: beside prediction actors on a node of one CPU it never runs);
* CSV feature columns read as text, so one word in a numeric column refuses its row, not the
  whole file (a typed read fails on the first "abc");
* every file read against one schema (:func:`conform`): files written by different hands differ
  (one stores a numeric column as text), and Ray Data cannot stack blocks whose types differ. A
  value its file cannot give in the schema's type becomes null and its row is refused with the
  reason (``ERROR_COLUMN``), as is every row of a file that lacks a column the model takes;
* no listing at all: the driver already knows the files.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa

from automodel.errors import DataError
from automodel.predict._encode import ERROR_COLUMN, parse_numbers

ROWS_PER_BLOCK = 65536
FOOTERS_MAX = 64  # Parquet inputs of up to this many files have every footer read on the driver


def plan_types(files, schema: pa.Schema, columns: list[str], numeric: set[str]) -> dict:
    """The type every file's ``columns`` are read as: a column's own type where every file
    agrees; where files differ, float64 for a ``numeric`` model column, else a type all can cast
    to (text at worst). Parquet sets of up to ``FOOTERS_MAX`` files are checked footer by footer
    (a column a file lacks fails here, naming the file); larger sets, and CSV, whose types are
    only known once read, take float64 for every ``numeric`` column and the first file's types
    for the rest.

    Raises:
        DataError: a file of a checked set lacks one of ``columns``.
    """
    first = {f.name: f.type for f in schema}
    types = {c: first.get(c, pa.string()) for c in columns}
    if files.format != "parquet" or len(files) > FOOTERS_MAX:
        return {c: pa.float64() if c in numeric else t for c, t in types.items()}
    import pyarrow.parquet as pq

    seen: dict[str, list[pa.DataType]] = {c: [] for c in columns}
    for path, name in zip(files.paths, files.names):
        try:
            with files.filesystem.open_input_file(path) as f:
                have = {fld.name: fld.type for fld in pq.read_schema(f)}
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"input: cannot read {name}: {str(exc).splitlines()[0]}") from None
        for c in columns:
            if c not in have:
                raise DataError(
                    f"input: column {c!r} is missing from {name} (the other files have it); "
                    "the model takes it in every file"
                )
            seen[c].append(have[c])
    for c, found in seen.items():
        if len(set(found)) > 1:
            types[c] = pa.float64() if c in numeric else _common(found)
    return types


def _common(found: list[pa.DataType]) -> pa.DataType:
    try:
        schemas = [pa.schema([("c", t)]) for t in found]
        return pa.unify_schemas(schemas, promote_options="permissive").field("c").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.string()


def read_input(
    files, types: dict[str, pa.DataType], numeric: set[str], required: set[str], num_cpus: float
):
    """The files as a lazy Ray Dataset of ``types``' columns in those types (:func:`plan_types`)
    plus ``ERROR_COLUMN``. A file that lacks one of the ``required`` columns has every row
    refused."""
    import ray.data
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    text = {c for c in numeric if files.format == "csv"}  # parsed by conform(), row by row

    class _Files(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return files.total_bytes * (3 if files.format == "parquet" else 1)

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
            tasks = []
            for path, size in zip(files.paths, files.sizes):
                meta = BlockMetadata(
                    num_rows=None, size_bytes=size, input_files=[path], exec_stats=None
                )
                tasks.append(
                    ReadTask(lambda path=path: _read_file(files, path, types, text, required), meta)
                )
            return tasks

    # A block stream a file: Ray Data would otherwise split each file's output into many small
    # blocks (200 for 10 files of 200 k rows), each a map call and a write task of its own.
    return ray.data.read_datasource(_Files(), num_cpus=num_cpus, override_num_blocks=len(files))


def _read_file(
    files, path: str, types: dict[str, pa.DataType], text: set[str], required: set[str]
) -> Iterator[pa.Table]:
    where = (
        path if files.filesystem.type_name == "local" else f"{files.filesystem.type_name}://{path}"
    )
    columns = list(types)
    try:
        if files.format == "parquet":
            import pyarrow.parquet as pq

            with files.filesystem.open_input_file(path) as f:
                pf = pq.ParquetFile(f)
                have = set(pf.schema_arrow.names)
                present = [c for c in columns if c in have]
                for batch in pf.iter_batches(ROWS_PER_BLOCK, columns=present):
                    yield conform(pa.Table.from_batches([batch]), types, required, where)
            return
        import pyarrow.csv as pacsv

        with files.filesystem.open_input_stream(path) as f:
            have = _csv_header(files, path)
            convert = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in text if c in have},
                include_columns=[c for c in columns if c in have],
                strings_can_be_null=True,
            )
            reader = pacsv.open_csv(
                f, convert_options=convert, read_options=pacsv.ReadOptions(block_size=8 << 20)
            )
            for batch in reader:
                yield conform(pa.Table.from_batches([batch]), types, required, where)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"input: cannot read {where}: {first}") from None


def _csv_header(files, path: str) -> set[str]:
    import pyarrow.csv as pacsv

    with files.filesystem.open_input_stream(path) as f:
        reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 16))
        return set(reader.schema.names)


def conform(
    table: pa.Table, types: dict[str, pa.DataType], required: set[str], where: str
) -> pa.Table:
    """``table`` in the columns and types of ``types``, plus ``ERROR_COLUMN``: the first reason
    a row cannot be scored (a value that does not cast, a required column the file lacks)."""
    n = table.num_rows
    reasons: list[str | None] = [None] * n

    def refuse(row: int, why: str) -> None:
        if reasons[row] is None:
            reasons[row] = why

    out = {}
    for name, want in types.items():
        if name not in table.column_names:
            if name in required:
                for r in range(n):
                    refuse(r, f"column {name!r} is missing from {where}")
            out[name] = pa.nulls(n, want)
            continue
        col = table.column(name)
        if col.type == want:
            out[name] = col
        elif pa.types.is_floating(want) and (
            pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        ):
            values, refused = parse_numbers(col, name)
            for r, why in refused.items():
                refuse(r, why)
            out[name] = pa.array(values, type=want, mask=pd.isna(values))
        else:
            out[name] = _cast(col, want, name, refuse)
    out[ERROR_COLUMN] = pa.array(reasons, type=pa.string())
    return pa.table(out)


def _cast(col: pa.ChunkedArray, want: pa.DataType, name: str, refuse) -> pa.Array:
    """``col`` cast to ``want``; value by value when the whole column will not go."""
    try:
        return col.cast(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = []
    for r, v in enumerate(col.to_pylist()):
        try:
            values.append(pa.scalar(v).cast(want).as_py() if v is not None else None)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            refuse(r, f"column {name!r}: expected {want}, got {shown}")
            values.append(None)
    return pa.array(values, type=want)
