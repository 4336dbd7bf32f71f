"""One output part: good rows in ``OUTPUT/<name>``, refused rows in ``OUTPUT/errors/<name>``.

Ray-free, so that both paths write the same files the same way: the Ray Data sink
(:class:`~automodel.predict._sink.PredictionSink`) writes one part a write task, and a small
input scored in the calling process (:mod:`automodel.predict._local`) writes one part.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from automodel.predict._scorer import ERROR_COLUMN, PREDICTION

ERRORS_DIR = "errors"


class PartWriter:
    """Splits each scored table on ``ERROR_COLUMN``: good rows to one Parquet file, refused rows
    (with their ``error``, without ``dropped_on_error``) to one in ``errors/``, each only if it
    gets a row. Use as a context manager; :meth:`counts` after it closed."""

    def __init__(self, filesystem: Any, path: str, name: str, dropped_on_error: list[str]):
        self.filesystem, self.path, self.name = filesystem, path.rstrip("/"), name
        self.dropped_on_error = dropped_on_error
        self.good_writer: pq.ParquetWriter | None = None
        self.bad_writer: pq.ParquetWriter | None = None
        self.rows = self.errors = 0

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        for w in (self.good_writer, self.bad_writer):
            if w is not None:
                w.close()

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        refused = pc.is_valid(table.column(ERROR_COLUMN))
        n_bad = pc.sum(refused).as_py() or 0
        good = table if n_bad == 0 else table.filter(pc.invert(refused))
        good = good.drop_columns([ERROR_COLUMN])
        if good.num_rows:
            if self.good_writer is None:
                self.good_writer = self._writer(f"{self.path}/{self.name}", good.schema)
            self.good_writer.write_table(good)
            self.rows += good.num_rows
        if n_bad:
            bad = table.filter(refused).drop_columns(
                [c for c in self.dropped_on_error if c in table.column_names]
            )
            bad = bad.rename_columns(
                ["error" if c == ERROR_COLUMN else c for c in bad.column_names]
            )
            if self.bad_writer is None:
                path = f"{self.path}/{ERRORS_DIR}/{self.name}"
                self.bad_writer = self._writer(path, bad.schema)
            self.bad_writer.write_table(bad.cast(self.bad_writer.schema))
            self.errors += bad.num_rows

    def counts(self) -> dict:
        """``{"rows", "errors", "files"}``: rows written, rows refused, prediction files."""
        return {
            "rows": self.rows,
            "errors": self.errors,
            "files": int(self.good_writer is not None),
        }

    def _writer(self, path: str, schema: pa.Schema) -> pq.ParquetWriter:
        return pq.ParquetWriter(path, schema, filesystem=self.filesystem)


def prediction_columns(task: str, classes: list | None, probabilities: bool) -> list[str]:
    """The columns a scored row gains (and a refused row does not get)."""
    from automodel.predict._scorer import probability_column

    cols = [PREDICTION]
    if probabilities and task == "classification" and classes:
        cols += [probability_column(c) for c in classes]
    return cols
