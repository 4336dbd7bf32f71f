"""``train.num_workers: auto``: one process, or the workers the cluster offers.

Data parallelism pays only when the time it saves exceeds what it costs to start: Ray Train's
worker group start-up (≈30 s on the 2-core development machine, see DESIGN.md) against an
in-process fit that trains a digits-size table in seconds. The decision times a few batches of
the real recipe on the driver, extrapolates to the whole fit, and compares the best case of
``n`` workers (a perfect ``n``-fold speed-up) with that start-up.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from automodel.models._base import fit_threads
from automodel.train._boosting import TRAINERS

# Seconds Ray Train takes to start a worker group before the first epoch (measured, DESIGN.md).
RAY_TRAIN_STARTUP_S = 30.0
PROBE_BATCHES = 6


@dataclass(frozen=True)
class WorkerPlan:
    """How the final fit runs: ``in_process`` on the driver, or ``workers`` Ray Train workers."""

    in_process: bool
    workers: int
    reason: str
    estimate_s: float | None = None  # the in-process fit's estimated seconds, when measured
    one_worker: bool = False  # one Ray worker task (streamed linear and in-memory families)


def plan_workers(
    spec: Any,
    dataset: Any,
    family: str,
    params: dict[str, Any],
    epochs: int,
    *,
    refit: bool = False,
) -> WorkerPlan:
    """Resolve ``spec.train.num_workers`` for fitting ``family`` on ``dataset`` for ``epochs``
    (on train + validation with ``refit``)."""
    from automodel.models import FAMILIES

    t = spec.train
    if FAMILIES[family].kind != "torch":
        return _plan_non_torch(spec, dataset, family, refit)
    if t.num_workers != "auto":
        return WorkerPlan(False, t.num_workers, f"train.num_workers: {t.num_workers}")
    offered = offered_workers(spec)
    if getattr(dataset, "stream", None) is not None:  # the driver holds a sample, not the rows
        return WorkerPlan(False, offered, "the rows stream from files: each worker reads its own")
    if t.use_gpu and not _driver_has_gpu():
        return WorkerPlan(False, max(offered, 1), "train.use_gpu and this process sees no GPU")
    estimate = estimate_fit_s(spec, dataset, family, params, epochs)
    rows = len(dataset.X_train) + (len(dataset.X_val) if refit else 0)  # a refit: train + val
    fit = f"one process trains {rows} rows x {epochs} epochs in ≈{estimate:.0f}s"
    if offered <= 1:
        return WorkerPlan(True, 1, f"{fit}; the cluster offers one worker", estimate)
    saved = estimate * (1 - 1 / offered)
    if saved <= RAY_TRAIN_STARTUP_S:
        return WorkerPlan(
            True,
            1,
            f"{fit}; {offered} workers would save at most {saved:.0f}s but Ray Train's start-up "
            f"costs ≈{RAY_TRAIN_STARTUP_S:.0f}s",
            estimate,
        )
    return WorkerPlan(
        False,
        offered,
        f"{fit}; {offered} workers save up to {saved:.0f}s, more than Ray Train's start-up "
        f"(≈{RAY_TRAIN_STARTUP_S:.0f}s)",
        estimate,
    )


def _plan_non_torch(spec: Any, dataset: Any, family: str, refit: bool) -> WorkerPlan:
    """Boosting on Ray Train, a linear model or an in-memory family on one Ray worker, or in
    this process: whichever sees every row the data has, at the least start-up."""
    t = spec.train
    if family in TRAINERS and t.num_workers != "auto" and t.num_workers > 1:
        reason = f"train.num_workers: {t.num_workers}; {TRAINERS[family]}"
        return WorkerPlan(False, t.num_workers, reason)
    stream = getattr(dataset, "stream", None)
    held = len(dataset.X_train) + (len(dataset.X_val) if refit else 0)
    rows = held if stream is None else stream.counts["train"] + (stream.counts["val"] * refit)
    if rows <= held:  # this process holds every row: no start-up to pay
        if stream is not None:
            return WorkerPlan(True, 1, f"this process holds all {rows:,} rows")
        return WorkerPlan(True, 1, "scikit-learn families fit in one process")
    have = f"{rows:,} rows stream from files and this process holds a sample of {held:,}"
    if family in TRAINERS:
        n = t.num_workers if t.num_workers != "auto" else offered_workers(spec)
        return WorkerPlan(
            False,
            n,
            f"{have}: {TRAINERS[family]} reads them all on {n} worker(s), for ≈"
            f"{RAY_TRAIN_STARTUP_S:.0f}s of Ray Train start-up",
        )
    if family == "logistic":
        return WorkerPlan(False, 1, f"{have}: a streaming solver reads them all", one_worker=True)
    return WorkerPlan(
        False, 1, f"{have}: fitted on the rows train.max_rows_in_memory allows", one_worker=True
    )


def offered_workers(spec: Any) -> int:
    """Workers of ``train.resources_per_worker`` the cluster (or this machine) has room for."""
    t = spec.train
    per_cpu = float(t.resources_per_worker.get("CPU", 1.0)) or 1.0
    per_gpu = float(t.resources_per_worker.get("GPU", 1.0)) if t.use_gpu else 0.0
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    elif spec.runtime.address is None:
        cpus = float(spec.runtime.num_cpus or os.cpu_count() or 1)
        gpus = float(_local_gpus()) if t.use_gpu else 0.0
    else:  # a cluster not connected yet: Ray Train will take what it offers; assume a few
        return 2
    n = int(cpus // per_cpu)
    if per_gpu > 0:
        n = min(n, int(gpus // per_gpu))
    return max(n, 1)


def estimate_fit_s(
    spec: Any, dataset: Any, family: str, params: dict[str, Any], epochs: int
) -> float:
    """Seconds one process would take: a few batches of the real recipe, timed, times the fit.

    The first batch is not timed (allocator, kernel selection). Validation each epoch costs a
    forward pass over the validation rows, about a third of a training step a row. Timed with
    the threads the in-process fit will use (:func:`fit_threads`).
    """
    with fit_threads():
        return _probe(spec, dataset, family, params, epochs)


def free_cpus() -> int:
    """Cores not busy right now (CPU count less the 1-minute load average), at least one.

    Threads beyond the free cores do not add speed: OpenMP pools (LightGBM, histogram
    gradient boosting, torch) that outnumber the free cores spin against each other and the
    rest of the machine; a 5-round LightGBM refit of digits took 74 s with 2 threads at load 14
    where a trial took 3 s with one.
    """
    cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        busy = 0.0
    return max(1, min(cpus, int(cpus - busy + 0.5)))


def _probe(spec: Any, dataset: Any, family: str, params: dict[str, Any], epochs: int) -> float:
    import torch

    from automodel.models import FAMILIES
    from automodel.models._recipe import epoch_batches, epoch_generator, to_tensors, train_epoch

    model = FAMILIES[family].for_data(dataset, params, seed=spec.data.seed, max_steps=epochs)
    recipe = model.recipe()
    device = torch.device("cuda" if spec.train.use_gpu else "cpu")
    rows = min(len(dataset.X_train), recipe.batch_size * PROBE_BATCHES)
    idx = np.arange(rows)
    Xt, yt = to_tensors(
        dataset.X_train[idx], dataset.y_train[idx], dataset.task, (0.0, 1.0), device
    )
    module = model.build_module().to(device)
    optimizer = recipe.make_optimizer(module)
    first = recipe.batch_size

    def timed(X, y) -> float:
        start = time.perf_counter()
        steps = math.ceil(len(X) / recipe.batch_size)
        batches = epoch_batches(X, y, recipe.batch_size, epoch_generator(0, 1), device)
        stats = train_epoch(
            module, batches, optimizer, recipe, task=dataset.task, epoch=1, steps=steps
        )
        float(stats.loss_sum)  # wait for the device
        return time.perf_counter() - start

    timed(Xt[:first], yt[:first])
    if rows <= first:
        per_row = timed(Xt, yt) / rows
    else:
        per_row = timed(Xt[first:], yt[first:]) / (rows - first)
    row_epochs = epochs * (len(dataset.X_train) + len(dataset.X_val) / 3)
    return per_row * row_epochs


def _driver_has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


__all__ = [
    "RAY_TRAIN_STARTUP_S",
    "WorkerPlan",
    "estimate_fit_s",
    "fit_threads",
    "free_cpus",
    "offered_workers",
    "plan_workers",
]
