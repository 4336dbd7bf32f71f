"""In-process training: scikit-learn families (no gradient descent to distribute)."""

from __future__ import annotations

import os
import time

from automodel.data import Dataset
from automodel.models import FAMILIES
from automodel.search._trainable import evaluate
from automodel.train._result import TrainedModel


def fit_local(
    dataset: Dataset, family: str, params: dict, *, metric: str, max_steps: int, seed: int
) -> TrainedModel:
    """Fit on train, score val each fidelity step, keep the history."""
    start = time.time()
    cls = FAMILIES[family]
    model = cls(
        dataset.task,
        dataset.n_features,
        dataset.n_outputs,
        params,
        image_shape=dataset.preprocessor.image_shape,
        seed=seed,
        max_steps=max_steps,
    )
    model.n_jobs = os.cpu_count() or 1
    history = []
    for epoch in range(1, model.n_steps() + 1):
        loss = model.step(dataset.X_train, dataset.y_train)
        history.append(
            {
                "epoch": epoch,
                "train_loss": loss,
                f"val_{metric}": evaluate(model, dataset.X_val, dataset.y_val, metric),
            }
        )
    info = {
        "workers": 1,
        "use_gpu": False,
        "epochs": model.n_steps(),
        "restarts": 0,
        "wall_s": round(time.time() - start, 2),
        "backend": "local",
    }
    state = model.module_.state_dict() if cls.kind == "torch" else None
    return TrainedModel(model, family, model.params, info, history, state)


__all__ = ["fit_local"]
