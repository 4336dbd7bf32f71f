"""Reading the input: one light read task a file, streaming it in Arrow batches.

The file set comes from the data stage's resolver (``automodel.data._files.resolve_files``); this
is only its read step with what batch scoring needs that ``read_files`` does not offer:

* a CPU share for the read tasks (Ray 2.60's ``read_parquet`` lists the files in a task of a
  whole CPU that nothing can lower: beside prediction actors on a node of one CPU it never runs);
* CSV feature columns read as text, so one word in a numeric column refuses its row, not the
  whole file (a typed read fails on the first "abc");
* no listing at all: the driver already knows the files.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from automodel.errors import DataError

ROWS_PER_BLOCK = 65536


def read_input(
    files, schema: pa.Schema, columns: list[str], text_columns: set[str], num_cpus: float
):
    """The files as a lazy Ray Dataset of ``columns``; ``text_columns`` read as text (CSV)."""
    import ray.data
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    types = {f.name: (pa.string() if f.name in text_columns else f.type) for f in schema}

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
                    ReadTask(lambda path=path: _read_file(files, path, columns, types), meta)
                )
            return tasks

    # A block stream a file: Ray Data would otherwise split each file's output into many small
    # blocks (200 for 10 files of 200 k rows), each a map call and a write task of its own.
    return ray.data.read_datasource(_Files(), num_cpus=num_cpus, override_num_blocks=len(files))


def _read_file(files, path: str, columns: list[str], types: dict) -> Iterator[pa.Table]:
    where = (
        path if files.filesystem.type_name == "local" else f"{files.filesystem.type_name}://{path}"
    )
    try:
        if files.format == "parquet":
            import pyarrow.parquet as pq

            with files.filesystem.open_input_file(path) as f:
                for batch in pq.ParquetFile(f).iter_batches(ROWS_PER_BLOCK, columns=columns):
                    yield pa.Table.from_batches([batch])
            return
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(
            column_types={c: types[c] for c in columns if c in types},
            include_columns=columns,
            strings_can_be_null=True,
        )
        with files.filesystem.open_input_stream(path) as f:
            reader = pacsv.open_csv(
                f, convert_options=convert, read_options=pacsv.ReadOptions(block_size=8 << 20)
            )
            for batch in reader:
                yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"input: cannot read {where}: {first}") from None
