"""Streamed data: the driver holds plans, statistics and a sample, never the table.

Files are read by Ray Data tasks on the cluster (``_files.read_files``). One pass
(:func:`scan`) computes per block, then merges on the driver, everything the preprocessor and
the task need (:mod:`._stats`) and draws a sample for the search; rows go to train/val/test by a
hash of a row key (:mod:`._rowsplit`): stable across reruns, cluster sizes and file order, with
no shuffle on the driver.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automodel.data._columns import DROPPED_BY_SPEC, check_columns
from automodel.data._files import FILE_COLUMN, ROW_COLUMN, FileSet, read_files, read_schema, reading
from automodel.data._leaks import warn_near_copies
from automodel.data._preprocess import Preprocessor
from automodel.data._rowsplit import SPLIT_COLUMN, SPLITS, TEST, TRAIN, VAL, assign_splits, row_hash
from automodel.data._stats import (
    MAX_TARGET_VALUES,
    ScanPlan,
    block_stats,
    class_values,
    column_kinds,
    finalize,
    infer_task,
    looks_like_dates,
    merge_stats,
    probe_rows,
)
from automodel.errors import DataError, SpecError

STREAM_BYTES = 256 * 2**20  # one file above this streams (stream: auto)


@contextlib.contextmanager
def quiet_ray_data() -> Iterator[None]:
    """Ray Data's per-operator progress log off while our own progress lines (rows, files,
    seconds) report the pass; restored afterwards."""
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    bars, level = ctx.enable_progress_bars, logger.level
    ctx.enable_progress_bars = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ctx.enable_progress_bars = bars
        logger.setLevel(level)


# ---- what the workers need: a picklable description of the streamed splits ---------------------
@dataclass(frozen=True)
class StreamSource:
    """The streamed splits: which files, how rows map to splits and how targets encode.

    Small and picklable: the final fit ships it to every Ray Train worker, which reads its own
    files with it (see ``automodel.train._data``).
    """

    files: FileSet
    target: str
    task: str
    classes: list | None
    key: str | None
    seed: int
    test_size: float
    val_size: float
    counts: dict[str, int]  # rows with a target per split
    file_rows: tuple[int, ...]  # rows (with and without a target) per file, in files order
    file_train: tuple[int, ...]  # training rows per file
    file_val: tuple[int, ...]  # validation rows per file
    search_rows: int  # training rows in the search's sample

    def split_of(self, frame: pd.DataFrame) -> np.ndarray:
        return assign_splits(row_hash(frame, self.key, self.seed), self.test_size, self.val_size)

    def encode(
        self, frame: pd.DataFrame, prep: Preprocessor, split: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X float32, y, global row id) of ``frame``'s rows in ``split`` that have a target."""
        keep = (self.split_of(frame) == split) & frame[self.target].notna().to_numpy()
        rows = frame[keep]
        offsets = dict(zip(self.files.names, np.concatenate([[0], np.cumsum(self.file_rows)[:-1]])))
        ids = rows[ROW_COLUMN].to_numpy(np.int64) + rows[FILE_COLUMN].map(offsets).to_numpy(
            np.int64
        )
        return prep.transform(rows), self.encode_target(rows[self.target]), ids

    def encode_target(self, y: pd.Series) -> np.ndarray:
        if self.task == "classification":
            codes = pd.Index(self.classes).get_indexer(y)
            if (codes < 0).any():
                raise DataError(
                    f"data.target: value {y[codes < 0].iloc[0]!r} is not one of the classes {self.classes}"
                )
            return codes.astype(np.int64)
        return y.to_numpy(dtype=np.float32)

    def worker_files(self, world: int) -> list[list[int]]:
        """Files per training worker, balanced by training rows (largest first to the lightest
        worker): each file is read by exactly one worker."""
        shares: list[list[int]] = [[] for _ in range(world)]
        load = [0] * world
        for i in sorted(range(len(self.file_train)), key=lambda i: (-self.file_train[i], i)):
            w = min(range(world), key=lambda w: (load[w], w))
            shares[w].append(i)
            load[w] += self.file_train[i]
        return [sorted(s) for s in shares]

    def predictions(
        self, prep: Preprocessor, predict: Callable[[np.ndarray], np.ndarray], split: int = TEST
    ):
        """(y, raw model output) over every row of ``split``, computed by Ray Data tasks on the
        cluster; only targets and outputs come back to the driver."""
        stream = self

        def score(batch: pd.DataFrame) -> dict:
            X, y, _ = stream.encode(batch, prep, split)
            raw = predict(X) if len(X) else np.zeros((0, 1), np.float32)
            raw = np.asarray(raw, dtype=np.float32).reshape(len(X), -1)
            return {
                "y": [y.tobytes()],
                "raw": [raw.tobytes()],
                "width": [raw.shape[1]],
                "n": [len(X)],
            }

        ds = read_files(self.files, positions=True).map_batches(
            score, batch_format="pandas", batch_size=None
        )
        ys, raws = [], []
        with reading(self.files), quiet_ray_data():
            for part in ds.iter_rows():
                if part["n"]:
                    ydt = np.int64 if self.task == "classification" else np.float32
                    ys.append(np.frombuffer(part["y"], dtype=ydt))
                    raws.append(
                        np.frombuffer(part["raw"], dtype=np.float32).reshape(
                            part["n"], part["width"]
                        )
                    )
        if not ys:
            raise DataError(f"data: no {SPLITS[split]} rows to score")
        return np.concatenate(ys), np.concatenate(raws)


def stream_files(spec: Any) -> FileSet | None:
    """The file set to stream for ``spec`` (a DataSpec), or None for the in-memory path:
    builtin and synthetic sources, ``stream: off``, and one file under 256 MB."""
    from automodel.data._files import is_file_source, resolve_files

    if spec.stream == "off" or not is_file_source(spec.source):
        return None
    files = resolve_files(spec.source)
    if spec.stream == "on" or files.multi or files.total_bytes > STREAM_BYTES:
        return files
    return None


# ---- the streamed load ------------------------------------------------------------------------
@dataclass
class StreamedLoad:
    """What one pass over the files gives: the preprocessor, the stream, a sample for the search."""

    preprocessor: Preprocessor
    stream: StreamSource
    sample: pd.DataFrame  # with SPLIT_COLUMN; internal columns dropped except ROW_COLUMN
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0


def scan(
    spec: Any,
    files: FileSet,
    sample_rows: int,
    progress: Callable[[str, str], None] | None = None,
) -> StreamedLoad:
    """One parallel pass over ``files``: split, fit the preprocessor, draw the search's sample.

    Args:
        spec: the DataSpec (target, task, key, seed, split sizes).
        files: the resolved file set.
        sample_rows: training rows the sample should hold (validation and test: a quarter each).
        progress: called with ("data", message) every few seconds while the pass runs.
    """
    from automodel.data._files import parquet_rows

    start = time.time()
    schema = read_schema(files)
    names = [f.name for f in schema]
    check_columns(spec, names)
    target = spec.target or names[-1]
    exclude = {target, FILE_COLUMN, ROW_COLUMN, *([spec.key] if spec.key else []), *spec.drop}
    kinds = column_kinds(schema, exclude)
    probe = probe_rows(files)
    for (
        name,
        kind,
    ) in kinds.items():  # parse dates per block only where the first rows look like dates
        if kind == "textdate" and not looks_like_dates(probe[name]):
            kinds[name] = "categorical"
    # Sample fractions from the row count in the Parquet footers (no data read); CSV: count first.
    rows = parquet_rows(files)
    if rows is None:
        with reading(files):
            rows = read_files(files).count()
    expect = [
        rows * (1 - spec.test_size) * (1 - spec.val_size),
        rows * (1 - spec.test_size) * spec.val_size,
        rows * spec.test_size,
    ]
    want = [sample_rows, sample_rows / 4, sample_rows / 4]
    frac = tuple(float(min(1.0, w / max(e, 1.0) * 1.05)) for w, e in zip(want, expect))
    plan = ScanPlan(target, spec.key, spec.seed, spec.test_size, spec.val_size, kinds, frac)

    ds = read_files(files, positions=True).map_batches(
        block_stats, fn_kwargs={"plan": plan}, batch_format="pandas", batch_size=None
    )
    parts, samples, seen_rows, seen_files, last = [], [], 0, set(), time.time()
    with reading(files), quiet_ray_data():
        for row in ds.iter_rows():
            p = json.loads(row["stats"])
            parts.append(p)
            samples.append(pd.read_parquet(io.BytesIO(row["sample"])))
            seen_rows += p["rows"]
            seen_files.update(p["files"])
            if progress is not None and time.time() - last > 5:
                last = time.time()
                progress(
                    "data",
                    f"read {seen_rows:,} of {rows:,} rows ({len(seen_files)}/{len(files)} files, "
                    f"{time.time() - start:.0f}s)",
                )
    stats = merge_stats(parts)
    sample = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()
    # The fractions overshoot a little; keep the sample's size exact by the sample hash order.
    kept = []
    for s, w in zip((TRAIN, VAL, TEST), want):
        part = sample[sample[SPLIT_COLUMN] == s].sort_values("__u", kind="stable").head(int(w))
        kept.append(part)
    sample = pd.concat(kept, ignore_index=True).drop(columns="__u")
    n_kept = sum(stats["splits"])
    if n_kept < 10:
        raise DataError(f"data: need at least 10 rows with a target, got {n_kept}")
    if stats["no_target"]:
        warnings.warn(
            f"dropped {stats['no_target']} row(s) with a missing target {target!r}", stacklevel=2
        )
    task = spec.task or infer_task(stats["target"], n_kept)
    classes = None
    if task == "classification":
        if stats["target"]["overflow"]:
            raise DataError(
                f"data.target: classification needs few classes, got more than {MAX_TARGET_VALUES}"
            )
        classes = class_values(stats["target"])
        if len(classes) < 2:
            raise DataError(f"data.target: classification needs at least 2 classes, got {classes}")
    elif not stats["target"]["numeric"]:
        raise SpecError(
            "data.task", f"regression needs a numeric target; {target!r} is not numeric"
        )
    train_sample = sample[sample[SPLIT_COLUMN] == TRAIN]
    dropped = {spec.key: "row key (data.key)"} if spec.key else {}
    prep = finalize(stats, train_sample, kinds, target, task, classes, dropped)
    prep.dropped.update({name: DROPPED_BY_SPEC for name in spec.drop})
    warn_near_copies(train_sample, target, task, prep.input_columns, spec.seed)
    stream = StreamSource(
        files=files,
        target=target,
        task=task,
        classes=classes,
        key=spec.key,
        seed=spec.seed,
        test_size=spec.test_size,
        val_size=spec.val_size,
        counts=dict(zip(SPLITS, stats["splits"])),
        file_rows=tuple(stats["files"].get(n, [0, 0, 0])[0] for n in files.names),
        file_train=tuple(stats["files"].get(n, [0, 0, 0])[1] for n in files.names),
        file_val=tuple(stats["files"].get(n, [0, 0, 0])[2] for n in files.names),
        search_rows=int((sample[SPLIT_COLUMN] == TRAIN).sum()),
    )
    seconds = time.time() - start
    if progress is not None:
        progress(
            "data",
            f"read {stats['rows']:,} rows in {len(files)} file(s), {files.total_bytes / 2**20:.0f} MB, "
            f"in {seconds:.1f}s; sample of {stream.search_rows:,} training rows for the search",
        )
    return StreamedLoad(prep, stream, sample, stats, seconds)


def batches_from_files(
    stream: StreamSource,
    indices: list[int],
    prep: Preprocessor,
    split: int = TRAIN,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(X, y, row ids) of ``split`` from the files at ``indices``, one Parquet row group (or CSV
    block) at a time: what one training worker reads, straight from storage."""
    from automodel.data._files import _read_positioned

    schema = read_schema(stream.files) if stream.files.format == "csv" else None
    for i in indices:
        one = stream.files.subset([i])
        for table in _read_positioned(one, 0, None, schema):
            frame = table.to_pandas()
            X, y, ids = stream.encode(frame, prep, split)
            if len(X):
                yield X, y, ids


__all__ = [
    "STREAM_BYTES",
    "StreamSource",
    "StreamedLoad",
    "assign_splits",
    "batches_from_files",
    "finalize",
    "row_hash",
    "scan",
    "stream_files",
]
