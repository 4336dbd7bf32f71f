"""LoopConfig: everything a Ray Train worker needs, built once by the driver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from automodel.models import FAMILIES, Family


@dataclass
class LoopConfig:
    """The per-worker loop's inputs; plain values plus two Ray handles.

    ``batch_size`` is the global batch: each of ``world`` workers takes ``batch_size / world``
    rows a step, so the optimizer sees the same batch (and the searched ``lr`` still fits)
    whatever ``train.num_workers`` is.
    """

    family: str
    task: str
    n_features: int
    n_outputs: int
    image_shape: tuple[int, ...] | None
    params: dict[str, Any]
    seed: int
    metric: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    lr_schedule: str
    warmup_epochs: int
    grad_clip: float | None
    patience: int | None
    checkpoint_every: int
    amp: bool
    threads: int
    cache_shard: bool  # pull the shard into worker memory once (small data), else stream each epoch
    train_rows: int
    y_scaling: tuple[float, float]
    val: Any  # ObjectRef of (X_val, y_val)
    ledger: Any  # RunLedger actor handle: attempts (restarts) and epoch rows (progress)

    def family_instance(self) -> Family:
        """An unfitted instance of the family with the resolved params (builds the same module)."""
        return FAMILIES[self.family](
            self.task,
            self.n_features,
            self.n_outputs,
            self.params,
            image_shape=self.image_shape,
            seed=self.seed,
            max_steps=self.epochs,
        )

    def worker_batch(self, world: int) -> int:
        return max(1, math.ceil(self.batch_size / world))

    def steps_per_epoch(self, world: int) -> int:
        # Ray Data splits the rows equally (equal=True), so every worker takes the same number
        # of steps: DDP's all-reduce would hang on a worker with one batch more.
        return max(1, math.ceil((self.train_rows // world) / self.worker_batch(world)))


def lr_factor(progress: float, epochs: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate ``progress`` epochs (fractional) into training.

    Linear warm-up over ``warmup`` epochs, then cosine to 1% of the base rate, or steps of 0.1 at
    half and three quarters of the remaining epochs, or constant.
    """
    warmup = min(warmup, max(epochs - 1, 0))
    if progress < warmup:
        return max(progress / warmup, 1e-3)
    t = min(1.0, (progress - warmup) / max(epochs - warmup, 1e-9))
    if schedule == "cosine":
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "step":
        return 0.1 ** ((t >= 0.5) + (t >= 0.75))
    return 1.0


__all__ = ["LoopConfig", "lr_factor"]
