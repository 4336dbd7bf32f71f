"""Where scored batches land: good rows in ``OUTPUT/*.parquet``, refused rows in ``OUTPUT/errors/``.

One pass over the stream writes both (a Ray Data ``Datasink``: each write task streams its blocks
into one Parquet file, and one errors file only if a row was refused), so nothing is executed
twice and nothing is collected on the driver.
"""

from __future__ import annotations

import uuid
from typing import Any

from ray.data import Datasink
from ray.data.block import BlockAccessor

from automodel.predict._parts import ERRORS_DIR, PartWriter, prediction_columns

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
        with PartWriter(self.filesystem, self.path, name, self.dropped_on_error) as part:
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                if table.num_rows == 0:
                    continue
                part.write(table)
                self.tally.wrote.remote(table.num_rows)
        return part.counts()

    def on_write_complete(self, write_result) -> None:
        returns = [r for r in write_result.write_returns if r]
        self.result = {
            "rows": sum(r["rows"] for r in returns),
            "errors": sum(r["errors"] for r in returns),
            "files": sum(r["files"] for r in returns),
        }


__all__ = ["PredictionSink", "prediction_columns"]  # prediction_columns: kept importable here
