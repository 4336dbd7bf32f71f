"""Train: the final fit of one configuration (data-parallel Ray Train for torch families)."""

from __future__ import annotations

from automodel.data import Dataset
from automodel.models import FAMILIES
from automodel.spec import Spec
from automodel.train._local import fit_local
from automodel.train._result import TrainedModel

__all__ = ["TrainedModel", "train_model"]


def train_model(spec: Spec, dataset: Dataset, family: str, params: dict, *, run_dir=None, metric: str | None = None) -> TrainedModel:
    """Train ``family`` with ``params`` on ``dataset`` as ``spec.train`` says."""
    metric = metric or spec.metric_for(dataset.task)
    steps = spec.train.epochs if FAMILIES[family].kind == "torch" else spec.search.max_epochs
    return fit_local(dataset, family, params, metric=metric, max_steps=steps, seed=spec.data.seed)
