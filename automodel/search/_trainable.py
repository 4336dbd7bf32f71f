"""The per-trial function Ray Tune runs: one family, stepped along its fidelity, scored on val."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from automodel.data import Dataset
from automodel.features import top_k
from automodel.metrics import score_raw
from automodel.models import FAMILIES
from automodel.models._base import fit_threads
from automodel.search._space import decode


def evaluate(model: Any, X: np.ndarray, y: np.ndarray, metric: str) -> float:
    return score_raw(model.task, metric, y, model.predict_raw(X))


def _cv_splits(d: Dataset, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    X = np.concatenate([d.X_train, d.X_val])
    y = np.concatenate([d.y_train, d.y_val])
    splitter = (StratifiedKFold if d.task == "classification" else KFold)(
        folds, shuffle=True, random_state=seed
    )
    return [(X[a], y[a], X[b], y[b]) for a, b in splitter.split(X, y)]


def fidelity(step: int, n_steps: int, max_steps: int) -> int:
    """Budget spent after ``step`` of ``n_steps``, in units of ``max_steps`` (what ASHA's rungs count).

    A forest grown in 5 chunks and an MLP trained for 20 epochs both reach 20 at full fidelity,
    so ASHA compares them at the same share of their budget rather than after the same count of
    unlike steps (2 chunks of trees against 2 epochs).
    """
    return max(1, math.ceil(step * max_steps / max(1, n_steps)))


def run_trial(
    config: dict[str, Any],
    *,
    dataset: Dataset,
    ranking: np.ndarray | None,
    metric: str,
    max_steps: int,
    cv_folds: int,
    seed: int,
    train: Any = None,
) -> None:
    """Report ``metric`` on the validation split (or the CV mean) after every fidelity step.

    ``train`` (the spec's ``TrainSpec``): torch families train with the final fit's recipe
    settings (schedule, warm-up, clipping, AMP) and report their device, lr and recipe.
    """
    from ray import tune

    began = time.time()  # the trial's own time: not the imports of an actor's first trial
    family, params, k = decode(config)
    d = dataset.select(top_k(ranking, k) if ranking is not None else None)
    cls = FAMILIES[family]

    def make():
        return _model(family, params, d, seed=seed, max_steps=max_steps, train=train)

    if cv_folds > 1 and cls.kind == "sklearn":
        folds = [(make(), *split) for split in _cv_splits(d, cv_folds, seed)]
    else:
        folds = [(make(), d.X_train, d.y_train, d.X_val, d.y_val)]
    n_steps = folds[0][0].n_steps()
    # a trial owns one CPU: more threads (torch's, OpenMP's, BLAS's) only fight the other trials
    with fit_threads():
        for step in range(1, n_steps + 1):
            losses, scores = [], []
            for model, Xt, yt, Xv, yv in folds:
                loss = model.step(Xt, yt)
                if loss is not None:
                    losses.append(loss)
                scores.append(evaluate(model, Xv, yv, metric))
            tune.report(
                {
                    metric: float(np.mean(scores)),
                    "loss": float(np.mean(losses)) if losses else None,
                    "n_steps": n_steps,
                    "fidelity": fidelity(step, n_steps, max_steps),
                    "fit_s": time.time() - began,
                    # torch: lr, device ("cuda" on a GPU the trial reserved), bf16, recipe identity
                    **getattr(folds[0][0], "last_epoch_", {"device": "cpu"}),
                }
            )


def _model(
    family: str, params: dict[str, Any], d: Dataset, *, seed: int, max_steps: int, train: Any
):
    model = FAMILIES[family].for_data(d, params, seed=seed, max_steps=max_steps)
    if model.kind == "torch":
        model.train_settings = train
    return model


def fit_defaults(
    family: str, *, dataset: Dataset, metric: str, max_steps: int, seed: int, train: Any = None
) -> tuple[float, int]:
    """Fit ``family`` with its default parameters in this process: (validation score, steps).

    What a sweep falls back to when its time budget ends before any trial reported a score.
    """
    model = _model(family, {}, dataset, seed=seed, max_steps=max_steps, train=train)
    steps = model.n_steps()
    for _ in range(steps):
        model.step(dataset.X_train, dataset.y_train)
    return evaluate(model, dataset.X_val, dataset.y_val, metric), steps
