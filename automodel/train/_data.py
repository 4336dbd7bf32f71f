"""Training rows through Ray Data: built on the driver, split across workers, read per worker.

Each row carries its index (``row``) into the training split, so a worker can say which rows it
saw and the driver can check that the workers' shares are disjoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
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
        rows = np.concatenate([p["row"] for p in parts]) if parts else np.zeros(0, np.int64)
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
                self.seen.append(chunk["row"])
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
    """Collective: how many rows each worker read, and how many rows more than one worker read.

    Every worker must call it. Skipped (None) on splits too large for a per-row count.
    """
    import torch
    import torch.distributed as dist

    if n_rows > 20_000_000:
        return None
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
    }


__all__ = ["WorkerRows", "cache_limit_bytes", "row_bytes", "shard_audit", "to_ray_dataset"]
