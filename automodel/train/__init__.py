"""Train: the final fit of one configuration.

Torch families train data-parallel with Ray Train's ``TorchTrainer`` (rows through Ray Data,
checkpoints, restarts after a lost worker); scikit-learn families fit in-process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automodel.errors import TrainingError
from automodel.train._preflight import check_train_resources
from automodel.train._result import TrainedModel

if TYPE_CHECKING:  # Ray Train workers import this package: keep pandas & co. out of their start-up
    from automodel.data import Dataset
    from automodel.progress import Progress
    from automodel.spec import Spec

__all__ = ["TrainedModel", "check_train_resources", "train_model"]


def train_model(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    run_dir: str | Path | None = None,
    metric: str | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train ``family`` with ``params`` on ``dataset`` as ``spec.train`` says.

    Args:
        spec: the validated spec; ``spec.train`` sets workers, GPUs, epochs, checkpoints.
        dataset: the splits; trained on ``train``, scored on ``val`` each epoch.
        family: a registered family name; torch families go to Ray Train.
        params: the family's hyperparameters (missing ones take the family's defaults).
        run_dir: where the Ray Train experiment ``train/`` (checkpoints) goes; a temporary
            folder if None.
        metric: the validation metric; default: the spec's for the task.
        progress: where progress lines go; default: stderr unless ``runtime.quiet``.

    Raises:
        ResourceError: the spec asks for GPUs or CPUs the local machine does not have.
        TrainingError: ``run_dir/train`` already holds a run, or workers failed more than
            ``train.max_failures`` times.
    """
    from automodel.models import FAMILIES
    from automodel.progress import Progress

    check_train_resources(spec.train, spec.runtime)
    metric = metric or spec.metric_for(dataset.task)
    progress = progress or Progress(spec.runtime.quiet)
    if FAMILIES[family].kind != "torch":
        from automodel.train._local import fit_local

        return fit_local(
            dataset,
            family,
            params,
            metric=metric,
            max_steps=spec.search.max_epochs,
            seed=spec.data.seed,
        )

    from automodel.train._ray import EXPERIMENT, fit_ray

    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="automodel-train-") as tmp:
            return fit_ray(
                spec, dataset, family, params, run_dir=tmp, metric=metric, progress=progress
            )
    existing = Path(run_dir) / EXPERIMENT
    if existing.is_dir() and any(existing.iterdir()):
        raise TrainingError(
            f"{existing} already holds a training run; choose another --out or remove it"
        )
    return fit_ray(spec, dataset, family, params, run_dir=run_dir, metric=metric, progress=progress)
