"""Metrics by their spec names: which way is better, the default per task, and one way to score.

``score_raw(task, metric, y_true, raw)`` is THE scoring path: a model's raw output (class
probabilities, or the regression prediction) → predictions → the metric. Everything that scores
a model (the card's test metrics, the compression gate, the report's baseline) goes through it.
Cheap to import (scikit-learn loads when a metric is computed), so the spec can use the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    """A metric's task and direction (``max``: higher is better)."""

    task: str
    mode: str


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("classification", "max"),
    "f1": MetricInfo("classification", "max"),
    "roc_auc": MetricInfo("classification", "max"),
    "rmse": MetricInfo("regression", "min"),
    "r2": MetricInfo("regression", "max"),
}
# The metric a spec without ``search.metric`` optimizes, per task.
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
MODES = {name: info.mode for name, info in METRICS.items()}


def default_metric(task: str) -> str:
    """The metric used when the spec names none: accuracy (classification) or r2 (regression)."""
    return DEFAULT_METRIC[task]


def metrics_for(task: str) -> list[str]:
    """Every metric that fits ``task``, in the order the card lists them."""
    return [name for name, info in METRICS.items() if info.task == task]


def score(
    metric: str, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None = None
) -> float:
    """One metric on predictions; classification ``pred`` are class indices, ``proba`` rows of
    probabilities. Prefer :func:`score_raw`, which turns a model's raw output into both."""
    from sklearn import metrics as skm  # lazily: the spec and the CLI import this module

    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, pred))
    if metric == "f1":
        return float(
            skm.f1_score(
                y_true,
                pred,
                average="binary" if proba is not None and proba.shape[1] == 2 else "macro",
            )
        )
    if metric == "roc_auc":
        if proba is None:
            raise ValueError("roc_auc needs probabilities")
        if proba.shape[1] == 2:
            return float(skm.roc_auc_score(y_true, proba[:, 1]))
        return float(
            skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=np.arange(proba.shape[1]))
        )
    if metric == "rmse":
        return float(np.sqrt(skm.mean_squared_error(y_true, pred)))
    if metric == "r2":
        return float(skm.r2_score(y_true, pred))
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def predictions(task: str, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A model's raw output → (predictions, probabilities or None).

    Classification models output one row of class probabilities per input row; the prediction is
    the most probable class. Regression models output one value per row.
    """
    raw = np.asarray(raw)
    if task == "classification":
        return raw.argmax(axis=1), raw
    return raw.reshape(-1), None


def score_raw(task: str, metric: str, y_true: np.ndarray, raw: np.ndarray) -> float:
    """``metric`` of a model whose raw output on the rows of ``y_true`` is ``raw``."""
    pred, proba = predictions(task, raw)
    return score(metric, y_true, pred, proba)


def scores_raw(task: str, y_true: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Every metric that fits the task (the card's test metrics); one that cannot be computed on
    these rows (roc_auc when a class is absent from the split) is left out."""
    pred, proba = predictions(task, raw)
    out = {}
    for name in metrics_for(task):
        try:
            out[name] = score(name, y_true, pred, proba)
        except ValueError:
            continue
    return out


def baseline_raw(
    task: str, y_train: np.ndarray, n_rows: int, n_classes: int | None = None
) -> np.ndarray:
    """The raw output of the model that ignores its input: the majority class of ``y_train``
    (probability 1) or its mean, for ``n_rows`` rows. What a real model must beat."""
    y_train = np.asarray(y_train)
    if task == "classification":
        k = int(n_classes or (int(y_train.max()) + 1))
        raw = np.zeros((n_rows, k), dtype=np.float32)
        raw[:, int(np.bincount(y_train.astype(np.int64), minlength=k).argmax())] = 1.0
        return raw
    return np.full(n_rows, float(np.mean(y_train)), dtype=np.float64)


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` beats ``b`` under ``metric``."""
    return a < b if MODES[metric] == "min" else a > b


def drop(metric: str, before: float, after: float) -> float:
    """How much worse ``after`` is than ``before`` (positive = worse), in the metric's units."""
    return before - after if MODES[metric] == "max" else after - before
