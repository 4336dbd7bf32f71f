"""LoopConfig: everything a Ray Train worker needs, built once by the driver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automodel.metrics import better
from automodel.models import FAMILIES, Family

if TYPE_CHECKING:  # an in-process fit of a scikit-learn family imports no torch
    from automodel.models._recipe import Recipe


@dataclass
class LoopConfig:
    """The per-worker loop's inputs; plain values plus two Ray handles.

    ``recipe.batch_size`` is the global batch: each of ``world`` workers takes
    ``batch_size / world`` rows a step, so the optimizer sees the same batch (and the searched
    ``lr`` still fits) whatever the number of workers is. ``epochs`` is how many epochs to run;
    ``recipe.epochs`` the schedule's length (longer than ``epochs`` in a refit that repeats a
    trial ASHA stopped early). ``val`` is None in a refit on train + validation.
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
    recipe: Recipe
    patience: int | None
    checkpoint_every: int
    threads: int
    cache_shard: bool  # pull the shard into worker memory once (small data), else stream each epoch
    train_rows: int
    y_scaling: tuple[float, float]
    val: Any  # ObjectRef of (X_val, y_val), or None (refit: no rows left to validate on)
    ledger: Any  # RunLedger actor handle: attempts (restarts) and epoch rows (progress)
    stream: Any = None  # streamed data: a train._data.WorkerStream, workers read their own files

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
        return max(1, math.ceil(self.recipe.batch_size / world))

    def steps_per_epoch(self, world: int) -> int:
        # Ray Data splits the rows equally (equal=True), so every worker takes the same number
        # of steps: DDP's all-reduce would hang on a worker with one batch more.
        return max(1, math.ceil((self.train_rows // world) / self.worker_batch(world)))


def early_stopping(
    state: dict[str, Any], epoch: int, score: float, metric: str, patience: int | None
) -> tuple[bool, bool]:
    """Update ``state`` (best_score, best_epoch, bad_epochs) with epoch ``epoch``'s val score.

    Returns (keep, stop): keep this epoch's weights as the best (a tie keeps the later epoch: it
    has trained longer), and whether ``patience`` epochs without improvement have passed.
    """
    improved = state["best_score"] is None or better(metric, score, state["best_score"])
    state["bad_epochs"] = 0 if improved else state["bad_epochs"] + 1
    keep = improved or score == state["best_score"]
    if keep:
        state.update(best_score=score, best_epoch=epoch)
    return keep, patience is not None and state["bad_epochs"] >= patience


__all__ = ["LoopConfig", "early_stopping"]
