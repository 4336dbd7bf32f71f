"""Training rows through Ray Data: built on the driver, split across workers, read per worker.

Each row carries its index (``row``) into the training split, so a worker can say which rows it
saw and the driver can check that the workers' shares are disjoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# A shard up to this size is pulled into worker memory once and reshuffled locally each epoch;
# a larger one streams from the object store every epoch. Ray Data starts a streaming execution
# per epoch (about a second here), which dominates epochs of small data.
DEFAULT_CACHE_MB = 1024
BLOCK_BYTES = 8 * 2**20
CHUNK_ROWS = 16384  # rows a streaming worker takes from Ray Data at once, then shuffles locally


def cache_limit_bytes() -> int:
    """``AUTOMODEL_TRAIN_CACHE_MB`` (0: always stream), else 1 GiB a worker."""
    return int(float(os.environ.get("AUTOMODEL_TRAIN_CACHE_MB", DEFAULT_CACHE_MB)) * 2**20)


def row_bytes(n_features: int) -> int:
    return 4 * n_features + 16  # float32 features, target, row index


def to_ray_dataset(X: np.ndarray, y: np.ndarray, world: int):
    """The training split as a Ray Dataset of ``{"X": [F] float32, "y", "row"}`` rows."""
    import pyarrow as pa
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    n = len(X)
    blocks = min(n, max(2 * world, math.ceil(n * row_bytes(X.shape[1]) / BLOCK_BYTES)))
    tables = []
    for idx in np.array_split(np.arange(n), blocks):
        tables.append(
            pa.table(
                {
                    "X": ArrowTensorArray.from_numpy(
                        np.ascontiguousarray(X[idx], dtype=np.float32)
                    ),
                    "y": y[idx],
                    "row": idx,
                }
            )
        )
    # Block order is reshuffled every time the dataset is read, i.e. every epoch of a streaming worker.
    return ray.data.from_arrow(tables).randomize_block_order()


class WorkerRows:
    """This worker's share of the training rows, in shuffled batches on ``device``.

    Cached: the shard is read once, then permuted each epoch with a generator seeded by
    (seed, epoch, rank), so a resumed epoch sees the same order as the one it replaces.
    Streamed: each epoch reads the Ray Data shard again, in chunks shuffled locally.
    """

    def __init__(
        self,
        shard: Any,
        *,
        batch_size: int,
        cache: bool,
        device: Any,
        seed: int,
        rank: int,
        task: str,
        y_scaling: tuple[float, float],
    ):
        self.shard, self.batch_size, self.cache, self.device = shard, batch_size, cache, device
        self.seed, self.rank, self.task, self.y_scaling = seed, rank, task, y_scaling
        self.seen: list[np.ndarray] = []  # row indices read in this attempt's first epoch
        self._X = self._y = None

    def _target(self, y):
        import torch

        if self.task == "classification":
            return y.to(torch.int64)
        mean, std = self.y_scaling
        return ((y.to(torch.float32) - mean) / std).to(torch.float32)

    def _load(self) -> None:
        import torch

        parts = list(
            self.shard.iter_batches(batch_size=65536, batch_format="numpy", prefetch_batches=2)
        )
        rows = np.concatenate([_real_rows(p) for p in parts]) if parts else np.zeros(0, np.int64)
        self.seen.append(rows)
        X = np.concatenate([p["X"] for p in parts]) if parts else np.zeros((0, 0), np.float32)
        y = np.concatenate([p["y"] for p in parts]) if parts else np.zeros(0)
        self._X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(self.device)
        self._y = self._target(torch.from_numpy(y)).to(self.device)

    def batches(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        import torch

        g = torch.Generator().manual_seed(self.seed * 100003 + epoch * 1009 + self.rank)
        if self.cache:
            if self._X is None:
                self._load()
            yield from self._shuffled(self._X, self._y, g)
            return
        record = not self.seen
        on_gpu = getattr(self.device, "type", "cpu") == "cuda"
        # Ray Data hands over large chunks (blocks in random order); shuffling and slicing a chunk
        # here costs far less a step than Ray's per-batch collation and local shuffle buffer.
        chunk_rows = self.batch_size * max(16, math.ceil(CHUNK_ROWS / self.batch_size))
        for chunk in self.shard.iter_batches(
            batch_size=chunk_rows, batch_format="numpy", prefetch_batches=2
        ):
            if record:
                self.seen.append(_real_rows(chunk))
            X = torch.from_numpy(np.ascontiguousarray(chunk["X"], dtype=np.float32))
            y = self._target(torch.from_numpy(chunk["y"]))
            if on_gpu:
                X, y = (
                    X.pin_memory().to(self.device, non_blocking=True),
                    y.pin_memory().to(self.device, non_blocking=True),
                )
            yield from self._shuffled(X, y, g)

    def _shuffled(self, X, y, g) -> Iterator[tuple[Any, Any]]:
        import torch

        order = torch.randperm(len(X), generator=g).to(X.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield X[idx], y[idx]

    def seen_rows(self) -> np.ndarray:
        return np.concatenate(self.seen) if self.seen else np.zeros(0, np.int64)


def shard_audit(seen: np.ndarray, n_rows: int, world: int, device: Any) -> dict[str, Any] | None:
    """Collective: how many rows each worker read, and how many rows more than one worker read;
    with streamed files also which files and node each worker read.

    Every worker must call it. Skipped (None) on splits too large for a per-row count.
    """
    import torch
    import torch.distributed as dist

    if n_rows > 20_000_000:
        return None
    files = None
    if _FILES_READ:  # this worker read files itself (FileShard): say which, and on which node
        mine = dict(_FILES_READ)
        files = [mine] * world if world == 1 else [None] * world
        if world > 1:
            dist.all_gather_object(files, mine)
    counts = torch.from_numpy(np.bincount(seen, minlength=n_rows).astype(np.int32)).to(device)
    sizes = torch.zeros(world, dtype=torch.int64, device=device)
    if world > 1:
        sizes[dist.get_rank()] = len(seen)
        dist.all_reduce(counts)
        dist.all_reduce(sizes)
    else:
        sizes[0] = len(seen)
    counts = counts.cpu()
    return {
        "rows_per_worker": [int(s) for s in sizes.cpu()],
        "rows": n_rows,
        "rows_covered": int((counts > 0).sum()),
        "rows_overlap": int((counts > 1).sum()),
        **(
            {"files_per_worker": [f["files"] for f in files], "nodes": [f["node"] for f in files]}
            if files
            else {}
        ),
    }


# ---- streamed files: each worker reads its own files ---------------------------------------------
_FILES_READ: dict[str, Any] = {}  # what this worker process's FileShard read, for shard_audit


def _real_rows(chunk: dict) -> np.ndarray:
    """Row ids of a chunk without the rows a FileShard repeats to even out the workers' steps."""
    return chunk["row"][~chunk["pad"]] if "pad" in chunk else chunk["row"]


@dataclass(frozen=True)
class WorkerStream:
    """What the final fit's workers need to read the training rows from the files themselves.

    ``shares[rank]`` are the files rank ``rank`` reads (each file exactly one worker's), or, with
    fewer files than workers, every file with rows kept by ``row id % world == rank``. Every
    worker yields ``rows`` rows an epoch (the largest share; smaller shares repeat a few of their
    rows) so all take the same number of DDP steps.
    """

    source: Any  # automodel.data.StreamSource
    preprocessor: Any  # automodel.data.Preprocessor, with the feature selection
    splits: tuple[int, ...]
    shares: list[list[int]]
    by_rows: bool
    rows: int  # rows each worker yields an epoch
    total: int  # rows in the training splits (row ids are 0..total-1)


def worker_stream(dataset: Any, world: int, *, refit: bool = False) -> WorkerStream | None:
    """The streamed description of ``dataset``'s training rows; None for in-memory data."""
    stream = dataset.stream
    if stream is None:
        return None
    splits = (0, 1) if refit else (0,)
    per_file = [t + (v if refit else 0) for t, v in zip(stream.file_train, stream.file_val)]
    total = sum(stream.counts[name] for name in ("train", "val")[: len(splits)])
    by_rows = len(stream.files) < world
    if by_rows:
        shares = [list(range(len(stream.files)))] * world
        rows = math.ceil(total / world)
    else:
        shares = stream.worker_files(world)
        rows = max(sum(per_file[i] for i in s) for s in shares)
        rows = max(rows, math.ceil(total / world))
    return WorkerStream(stream, dataset.preprocessor, splits, shares, by_rows, rows, total)


def train_shard(config: Any, rank: int, world: int) -> Any:
    """This worker's training rows: its Ray Data shard, or (streamed files) a FileShard."""
    if getattr(config, "stream", None) is None:
        import ray.train

        return ray.train.get_dataset_shard("train")
    return FileShard(config.stream, rank, world, config.seed)


class FileShard:
    """One worker's training rows read straight from its files, encoded as they arrive.

    Quacks like the ``iter_batches`` of a Ray Data shard (what :class:`WorkerRows` reads):
    numpy chunks of ``{"X", "y", "row", "pad"}``. A background thread reads and encodes the next
    chunks while the training step runs (``prefetch_batches``). ``row`` numbers the training
    rows 0..total-1 the same way on every worker (files in order, rows in file order), so the
    driver's audit can check that the workers' shares are disjoint and cover the split.
    """

    def __init__(self, stream: WorkerStream, rank: int, world: int, seed: int):
        self.stream, self.rank, self.world, self.seed = stream, rank, world, seed
        self.epoch = 0
        # training rows before each file: row ids are global, whichever worker reads the file
        self.offsets = np.concatenate([[0], np.cumsum(stream.source.file_train)[:-1]]).astype(
            np.int64
        )
        self.files = stream.shares[rank]

    def _rows(self, order: list[int]) -> Iterator[dict[str, np.ndarray]]:
        from automodel.data._stream import batches_from_files

        s = self.stream
        for i in order:
            for split in s.splits:
                # row ids: position among the file's rows of this split, after the split's rows of
                # earlier files (val ids after all train ids)
                base = (
                    self.offsets[i]
                    if split == 0
                    else s.source.counts["train"] + _val_offset(s.source, i)
                )
                count = 0
                for X, y, _ in batches_from_files(s.source, [i], s.preprocessor, split):
                    ids = base + count + np.arange(len(X), dtype=np.int64)
                    count += len(X)
                    if s.by_rows:
                        keep = ids % self.world == self.rank
                        X, y, ids = X[keep], y[keep], ids[keep]
                    if len(X):
                        yield {"X": X, "y": y, "row": ids}

    def iter_batches(
        self, *, batch_size: int, batch_format: str = "numpy", prefetch_batches: int = 2
    ):
        """Chunks of exactly ``batch_size`` rows (the last may be shorter), ``stream.rows`` rows in all."""
        import ray

        rng = np.random.default_rng(self.seed * 7919 + self.epoch * 31 + self.rank)
        self.epoch += 1
        order = [int(i) for i in rng.permutation(self.files)]  # file order reshuffled each pass
        _FILES_READ.update(
            node=ray.get_runtime_context().get_node_id(),
            files=[self.stream.source.files.names[i] for i in sorted(self.files)],
        )

        def padded() -> Iterator[dict[str, np.ndarray]]:
            left, first = self.stream.rows, True
            while left > 0:
                produced = 0
                for part in self._rows(order):
                    part = {k: v[:left] for k, v in part.items()}
                    part["pad"] = np.full(len(part["row"]), not first)
                    left -= len(part["row"])
                    produced += len(part["row"])
                    yield part
                    if left <= 0:
                        return
                if produced == 0:
                    raise RuntimeError(f"training worker {self.rank} has no rows in its files")
                first = False  # a second pass over the share only evens out the step count

        yield from _prefetched(_rechunk(padded(), batch_size), prefetch_batches)


def shard_rows(stream: WorkerStream, rank: int, world: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank ``rank``'s share of the rows (its files, or every ``world``-th row), read once and
    held in memory, without the rows a FileShard repeats to even out DDP steps (a boosting
    worker fits each row once)."""
    X, y = [], []
    for chunk in FileShard(stream, rank, world, seed=0).iter_batches(batch_size=65536):
        real = ~chunk["pad"]
        X.append(chunk["X"][real])
        y.append(chunk["y"][real])
    return np.concatenate(X), np.concatenate(y)


def rows_by_hash(
    source: Any, prep: Any, splits: tuple[int, ...], limit: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """At most ``limit`` rows of ``splits`` from every file, the ones whose sample hash is
    lowest (the hash that drew the search's sample, so these rows hold the sample's), read
    straight from storage on the calling worker; and how many rows the splits have in all.

    Reads a little over ``limit`` rows' worth (``limit / available`` of each block, plus a
    margin), then keeps the ``limit`` lowest: memory stays near the limit whatever the table.
    """
    from automodel.data._files import _read_positioned, read_schema
    from automodel.data._rowsplit import SALT_SAMPLE, SPLITS, mix_hash, row_hash, uniform_of

    available = sum(source.counts[SPLITS[split]] for split in splits)
    frac = 1.0 if limit is None or available <= limit else min(1.0, 1.02 * limit / available + 1e-3)
    schema = read_schema(source.files) if source.files.format == "csv" else None
    Xs, ys, us = [], [], []
    for i in range(len(source.files)):
        for table in _read_positioned(source.files.subset([i]), 0, None, schema):
            frame = table.to_pandas()
            u = uniform_of(mix_hash(row_hash(frame, source.key, source.seed) ^ SALT_SAMPLE))
            keep = (
                np.isin(source.split_of(frame), splits)
                & frame[source.target].notna().to_numpy()
                & (u < frac)
            )
            if keep.any():
                rows = frame[keep]
                Xs.append(prep.transform(rows))
                ys.append(source.encode_target(rows[source.target]))
                us.append(u[keep])
    if not Xs:
        raise RuntimeError("no training rows in the files")
    X, y, u = np.concatenate(Xs), np.concatenate(ys), np.concatenate(us)
    if limit is not None and len(X) > limit:
        keep = np.sort(np.argsort(u, kind="stable")[:limit])
        X, y = X[keep], y[keep]
    return X, y, available


def _val_offset(source: Any, index: int) -> int:
    return int(np.sum(source.file_val[:index], dtype=np.int64))


def _rechunk(parts: Iterator[dict[str, np.ndarray]], size: int) -> Iterator[dict[str, np.ndarray]]:
    buf: list[dict[str, np.ndarray]] = []
    held = 0
    for part in parts:
        buf.append(part)
        held += len(part["row"])
        while held >= size:
            merged = {k: np.concatenate([b[k] for b in buf]) for k in buf[0]}
            yield {k: v[:size] for k, v in merged.items()}
            rest = {k: v[size:] for k, v in merged.items()}
            buf, held = ([rest] if len(rest["row"]) else []), len(rest["row"])
    if held:
        yield {k: np.concatenate([b[k] for b in buf]) for k in buf[0]}


def _prefetched(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` produced by a background thread up to ``depth`` ahead (reading and encoding
    overlap the training step; pyarrow and numpy release the GIL for most of it)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            if failure:
                raise failure[0]
            return
        yield item


__all__ = [
    "FileShard",
    "WorkerRows",
    "WorkerStream",
    "cache_limit_bytes",
    "row_bytes",
    "rows_by_hash",
    "shard_audit",
    "shard_rows",
    "to_ray_dataset",
    "train_shard",
    "worker_stream",
]
