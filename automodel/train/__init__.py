"""Train: the final fit of one configuration.

``train.num_workers: auto`` (the default) fits in this process when the data is too small for
data parallelism to pay for Ray Train's start-up, and on the workers the cluster offers when it
is not (:mod:`._workers`); a number always means that many Ray Train workers. Ray Train's
``TorchTrainer`` brings rows through Ray Data, checkpoints, restarts after a lost worker;
scikit-learn families fit in-process, LightGBM and XGBoost too unless ``train.num_workers`` is a
number above one (then Ray Train's ``LightGBMTrainer`` / ``XGBoostTrainer``, :mod:`._boosting`).
Every torch fit trains with the recipe search trials use
(:func:`automodel.models._recipe.train_epoch`). With a :class:`Refit`, the winner of
a search is retrained on train + validation for the epochs the search found.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automodel.errors import TrainingError
from automodel.train._preflight import check_train_resources
from automodel.train._result import Refit, TrainedModel

if TYPE_CHECKING:  # Ray Train workers import this package: keep pandas & co. out of their start-up
    from automodel.data import Dataset
    from automodel.progress import Progress
    from automodel.spec import Spec

__all__ = ["Refit", "TrainedModel", "check_train_resources", "train_model"]


def train_model(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    run_dir: str | Path | None = None,
    metric: str | None = None,
    progress: Progress | None = None,
    refit: Refit | None = None,
) -> TrainedModel:
    """Train ``family`` with ``params`` on ``dataset`` as ``spec.train`` says.

    Args:
        spec: the validated spec; ``spec.train`` sets workers, GPUs, epochs, checkpoints.
        dataset: the splits; trained on ``train``, scored on ``val`` each epoch.
        family: a registered family name.
        params: the family's hyperparameters (missing ones take the family's defaults).
        run_dir: where the Ray Train experiment ``train/`` (checkpoints) goes; a temporary
            folder if None.
        metric: the validation metric; default: the spec's for the task.
        progress: where progress lines go; default: stderr unless ``runtime.quiet``.
        refit: train on train + validation for ``refit.epochs`` (no early stopping: no rows
            are left to validate on); the card's validation score is ``refit.val_score``.

    Raises:
        ResourceError: the spec asks for GPUs or CPUs the local machine does not have.
        TrainingError: ``run_dir/train`` already holds a run, or workers failed more than
            ``train.max_failures`` times.
    """
    from automodel.progress import Progress
    from automodel.train._workers import plan_workers

    check_train_resources(spec.train, spec.runtime)
    metric = metric or spec.metric_for(dataset.task)
    progress = progress or Progress(spec.runtime.quiet)
    start = time.time()
    epochs = refit.epochs if refit else spec.train.epochs
    plan = plan_workers(spec, dataset, family, params, epochs, refit=refit is not None)
    decide_s = round(time.time() - start, 2)
    what = "refit on train + validation" if refit else "fit"
    where = (
        "in this process"
        if plan.in_process
        else "on one Ray worker"
        if plan.one_worker
        else f"on {plan.workers} Ray Train worker(s)"
    )
    progress("train", f"{family}: {what} {where} ({plan.reason})")
    if plan.one_worker:  # streamed rows, a family Ray Train does not distribute
        from automodel.train._one_worker import fit_one_worker

        trained = fit_one_worker(
            spec, dataset, family, params, metric=metric, progress=progress, refit=refit
        )
    elif plan.in_process:
        from automodel.train._local import fit_local

        trained = fit_local(
            spec, dataset, family, params, metric=metric, progress=progress, refit=refit
        )
    else:
        trained = _fit_ray(spec, dataset, family, params, run_dir, metric, progress, plan, refit)
    # where the seconds went: deciding (a timed probe of the recipe), then the fit's own
    # startup_s (Ray Train's worker start-up; 0 in-process) and fit_s (the epochs)
    trained.info.update(workers_reason=plan.reason, decide_s=decide_s, refit=refit is not None)
    if refit is not None:
        trained.info["val_before_refit"] = refit.val_score
    _say_where_the_time_went(progress, trained, metric)
    return trained


def _fit_ray(spec, dataset, family, params, run_dir, metric, progress, plan, refit) -> TrainedModel:
    from automodel.train._boosting import TRAINERS, fit_boosting
    from automodel.train._ray import EXPERIMENT, fit_ray

    fit = fit_boosting if family in TRAINERS else fit_ray  # LightGBM/XGBoostTrainer
    kwargs = dict(metric=metric, progress=progress, workers=plan.workers, refit=refit)
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="automodel-train-") as tmp:
            return fit(spec, dataset, family, params, run_dir=tmp, **kwargs)
    existing = Path(run_dir) / EXPERIMENT
    if existing.is_dir() and any(existing.iterdir()):
        raise TrainingError(
            f"{existing} already holds a training run; choose another --out or remove it"
        )
    return fit(spec, dataset, family, params, run_dir=run_dir, **kwargs)


def _say_where_the_time_went(progress: Progress, trained: TrainedModel, metric: str) -> None:
    info = trained.info
    parts = [
        f"{info['epochs']} epoch(s) in {info['wall_s']:.1f}s",
        f"rows seen {info['rows_seen']:,} of {info['rows_available']:,} available",
    ]
    if info.get("backend") == "ray_train" and info.get("startup_s") is not None:
        parts.append(f"Ray Train start-up {info['startup_s']:.1f}s, epochs {info['fit_s']:.1f}s")
    if info.get("stopped_early"):
        parts.append(f"early-stopped, kept epoch {info['kept_epoch']}")
    if info.get("refit"):
        parts.append(
            f"val {metric} before the refit {trained.val_score:.4f}"
            if trained.val_score is not None
            else "refit"
        )
    elif trained.val_score is not None:
        parts.append(f"val {metric} {trained.val_score:.4f}")
    progress("train", "done: " + "; ".join(parts))
