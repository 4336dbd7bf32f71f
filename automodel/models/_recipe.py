"""The torch training recipe: one epoch of gradient descent, shared by every torch fit.

Search trials (a family's ``step``), the final fit (each Ray Train worker, or one process) and
compression's fine-tune all train through :func:`train_epoch`: the same optimizer, learning-rate
schedule with warm-up, gradient clipping, bf16 autocast on GPUs that support it, and batches
already on the model's device. So the learning rate a trial tunes is the one the final fit uses
with the same schedule, and a trial that reserved a GPU trains on it.

This module imports only torch and numpy, so a machine without the rest of automodel (a GPU box
with plain torch, see ``benchmarks/gpu_proof.py``) can load it by path.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

# What every epoch this module trained says it was: trials report it, the final fit's card
# records it, so "the same function trained both" is a fact in the run's files.
RECIPE = "automodel.models.train_epoch/1"
# A split up to this size goes to the device once; a larger one stays in pinned host memory
# and each batch is copied over asynchronously.
ON_DEVICE_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Recipe:
    """How a torch model is trained: everything but the network and the rows.

    ``epochs`` is the length of the schedule; a run may stop before it ends (ASHA, early
    stopping, a refit that repeats the epochs a trial found).
    """

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    schedule: str = "cosine"  # cosine | step | constant
    warmup_epochs: int = 1
    epochs: int = 20
    grad_clip: float | None = 1.0
    amp: bool = True  # bf16 autocast where the device supports it; ignored on CPU
    # one weight a class in the cross-entropy ("balanced": n / (classes x count)); None: all 1
    class_weights: tuple[float, ...] | None = None

    @classmethod
    def from_settings(cls, params: dict[str, Any], settings: Any, epochs: int) -> Recipe:
        """The recipe for a family's ``params`` under ``settings`` (a ``TrainSpec``).

        A searched (or explicit) ``batch_size`` / ``optimizer`` in ``params`` wins over the
        spec's ``train`` section; ``lr`` and ``weight_decay`` come from the params.
        """
        return cls(
            optimizer=str(params.get("optimizer", settings.optimizer)),
            lr=float(params.get("lr", 1e-3)),
            weight_decay=float(params.get("weight_decay", 0.0)),
            batch_size=int(params.get("batch_size", settings.batch_size)),
            schedule=settings.lr_schedule,
            warmup_epochs=settings.warmup_epochs,
            epochs=int(epochs),
            grad_clip=settings.grad_clip,
            amp=settings.amp,
        )

    def with_epochs(self, epochs: int) -> Recipe:
        return replace(self, epochs=int(epochs))

    def balanced_for(self, y: np.ndarray, n_classes: int) -> Recipe:
        """This recipe weighting each class of ``y`` as scikit-learn's ``class_weight="balanced"``."""
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(float)
        weights = len(y) / (n_classes * np.maximum(counts, 1.0))
        return replace(self, class_weights=tuple(float(w) for w in weights))

    def lr_at(self, progress: float) -> float:
        """Learning rate ``progress`` epochs (fractional) into training."""
        return self.lr * lr_factor(progress, self.epochs, self.warmup_epochs, self.schedule)

    def describe(self) -> str:
        clip = f"clip {self.grad_clip:g}" if self.grad_clip else "no clipping"
        weighted = ", balanced class weights" if self.class_weights else ""
        return (
            f"{RECIPE}: {self.optimizer} lr {self.lr:.3g}, {self.schedule} over {self.epochs} "
            f"epoch(s), warm-up {self.warmup_epochs}, {clip}, batch {self.batch_size}{weighted}"
        )

    def make_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(module, self.optimizer, self.lr, self.weight_decay)


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


def make_optimizer(
    module: nn.Module, name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(
            module.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True
        )
    if name == "adam":
        return torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)


@dataclass
class EpochStats:
    """What one epoch did. ``loss_sum`` stays a device tensor: no host sync inside the epoch."""

    loss_sum: Any  # torch scalar, float64, on the device
    rows: int
    lr: float  # the rate of the epoch's last step
    device: str  # "cuda" | "cpu"
    bf16: bool
    recipe: str  # the recipe's description, RECIPE first

    def mean_loss(self) -> float:
        return float(self.loss_sum) / max(self.rows, 1)


def use_bf16(recipe: Recipe, device: torch.device) -> bool:
    return recipe.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    *,
    task: str,
    epoch: int,
    steps: int,
    seed: int | None = None,
    rank: int = 0,
) -> EpochStats:
    """Epoch ``epoch`` (1-based) of ``recipe`` over ``batches`` of ``(X, y)`` on the model's device.

    ``steps`` is how many batches the epoch holds, so the learning rate moves every step along
    the schedule. ``y`` holds class indices (classification) or the standardized target. With
    ``seed``, dropout draws are reseeded from (seed, epoch, rank): an epoch redone after a restart
    draws the same masks.
    """
    device = next(model.parameters()).device
    bf16 = use_bf16(recipe, device)
    if seed is not None:
        torch.manual_seed(seed * 100003 + epoch * 1009 + rank)
    if task == "classification":
        weight = recipe.class_weights
        loss_fn = nn.CrossEntropyLoss(
            weight=None if weight is None else torch.tensor(weight, device=device)
        )
    else:
        loss_fn = nn.MSELoss()
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen, lr = 0, recipe.lr
    for i, (xb, yb) in enumerate(batches):
        lr = recipe.lr_at(epoch - 1 + (i + 1) / max(steps, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(xb)
            # the loss itself runs in float32 under autocast
            loss = loss_fn(out if task == "classification" else out.reshape(-1), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        loss_sum += loss.detach().double() * len(yb)
        seen += len(yb)
    return EpochStats(loss_sum, seen, lr, device.type, bf16, recipe.describe())


# ---- rows on the device ------------------------------------------------------------------------
def pick_device(requested: str = "auto") -> torch.device:
    """``cpu``, ``cuda``, or ``auto``: a GPU this process may use.

    Under Ray, ``auto`` takes a GPU only if Ray reserved one for this process (a trial with
    ``search.gpus_per_trial`` > 0): Ray leaves CUDA_VISIBLE_DEVICES alone for tasks that asked
    for no GPU, so ``torch.cuda.is_available()`` alone would let them crowd onto others' GPUs.
    (A driver has no GPUs assigned: the final fit names its device instead.)
    """
    if requested != "auto":
        return torch.device(requested)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():  # the GPUs Ray assigned to this process, if any
        return torch.device("cuda" if ray.get_gpu_ids() else "cpu")
    return torch.device("cuda")


def to_tensors(
    X: Any, y: Any, task: str, y_scaling: tuple[float, float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A split as tensors for :func:`epoch_batches`: on ``device`` when it fits, else pinned."""
    import numpy as np

    X = np.ascontiguousarray(X, dtype=np.float32)
    if not X.flags.writeable:  # rows from Ray's object store are read-only; torch wants to own
        X = X.copy()
    Xt = torch.from_numpy(X)
    if task == "classification":
        yt = torch.from_numpy(np.asarray(y).astype(np.int64))
    else:
        mean, std = y_scaling
        yt = torch.from_numpy(((np.asarray(y) - mean) / std).astype(np.float32))
    if device.type == "cpu":
        return Xt, yt
    if Xt.numel() * 4 <= ON_DEVICE_BYTES:
        return Xt.to(device), yt.to(device)
    return Xt.pin_memory(), yt.pin_memory()


def epoch_batches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of (X, y) on ``device``; pinned host rows are copied without blocking."""
    order = torch.randperm(len(X), generator=generator)
    if X.device == device:
        order = order.to(device)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield X[idx], y[idx]
        return
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield X[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The batch order of ``epoch``: the same seed formula as the Ray Train workers' rows."""
    return torch.Generator().manual_seed(seed * 100003 + epoch * 1009 + rank)


__all__ = [
    "RECIPE",
    "EpochStats",
    "Recipe",
    "epoch_batches",
    "epoch_generator",
    "lr_factor",
    "make_optimizer",
    "pick_device",
    "to_tensors",
    "train_epoch",
    "use_bf16",
]
