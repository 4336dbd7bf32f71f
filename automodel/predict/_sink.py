"""Where scored batches land: good rows in ``OUTPUT/*.parquet``, refused rows in ``OUTPUT/errors/``.

One pass over the stream writes both (a Ray Data ``Datasink``: each write task streams its blocks
into one Parquet file, and one errors file only if a row was refused), so nothing is executed
twice and nothing is collected on the driver.
"""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import BlockAccessor

from automodel.predict._scorer import ERROR_COLUMN, PREDICTION

ERRORS_DIR = "errors"
ROWS_PER_FILE = 131072


class PredictionSink(Datasink):
    """Splits each block on ``ERROR_COLUMN``; returns ``{"rows", "errors", "files"}`` a task.

    Args:
        filesystem: a ``pyarrow.fs`` filesystem (local, NFS or object storage).
        path: the output directory on it.
        dropped_on_error: columns that mean nothing for a refused row (prediction, probabilities).
        tally: the run's tally actor, told how many rows each task wrote.
    """

    def __init__(self, filesystem: Any, path: str, dropped_on_error: list[str], tally: Any):
        self.filesystem = filesystem
        self.path = path.rstrip("/")
        self.dropped_on_error = dropped_on_error
        self.tally = tally
        self.run_id = uuid.uuid4().hex[:8]
        self.result: dict | None = None

    def get_name(self) -> str:
        return "WritePredictions"

    @property
    def min_rows_per_write(self) -> int:
        # Files of at least this many rows: fewer write tasks (each one is scheduled) and files.
        return ROWS_PER_FILE

    def on_write_start(self, schema=None) -> None:
        self.filesystem.create_dir(f"{self.path}/{ERRORS_DIR}", recursive=True)

    def write(self, blocks, ctx) -> dict:
        name = f"part-{self.run_id}-{ctx.task_idx:06d}.parquet"
        good_writer = bad_writer = None
        rows = errors = 0
        try:
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                if table.num_rows == 0:
                    continue
                refused = pc.is_valid(table.column(ERROR_COLUMN))
                n_bad = pc.sum(refused).as_py() or 0
                good = table if n_bad == 0 else table.filter(pc.invert(refused))
                good = good.drop_columns([ERROR_COLUMN])
                if good.num_rows:
                    if good_writer is None:
                        good_writer = self._writer(f"{self.path}/{name}", good.schema)
                    good_writer.write_table(good)
                    rows += good.num_rows
                if n_bad:
                    bad = table.filter(refused).drop_columns(
                        [c for c in self.dropped_on_error if c in table.column_names]
                    )
                    bad = bad.rename_columns(
                        ["error" if c == ERROR_COLUMN else c for c in bad.column_names]
                    )
                    if bad_writer is None:
                        path = f"{self.path}/{ERRORS_DIR}/{name}"
                        bad_writer = self._writer(path, bad.schema)
                    bad_writer.write_table(bad.cast(bad_writer.schema))
                    errors += bad.num_rows
                self.tally.wrote.remote(table.num_rows)
        finally:
            for w in (good_writer, bad_writer):
                if w is not None:
                    w.close()
        return {"rows": rows, "errors": errors, "files": int(good_writer is not None)}

    def _writer(self, path: str, schema: pa.Schema) -> pq.ParquetWriter:
        return pq.ParquetWriter(path, schema, filesystem=self.filesystem)

    def on_write_complete(self, write_result) -> None:
        returns = [r for r in write_result.write_returns if r]
        self.result = {
            "rows": sum(r["rows"] for r in returns),
            "errors": sum(r["errors"] for r in returns),
            "files": sum(r["files"] for r in returns),
        }


def prediction_columns(task: str, classes: list | None, probabilities: bool) -> list[str]:
    """The columns a scored row gains (and a refused row does not get)."""
    from automodel.predict._scorer import probability_column

    cols = [PREDICTION]
    if probabilities and task == "classification" and classes:
        cols += [probability_column(c) for c in classes]
    return cols
