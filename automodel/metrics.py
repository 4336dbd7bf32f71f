"""Metrics by their spec names, and which way is better."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

MODES = {"accuracy": "max", "f1": "max", "roc_auc": "max", "rmse": "min", "r2": "max"}


def score(metric: str, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None = None) -> float:
    """One metric; classification ``pred`` are class indices, ``proba`` rows of probabilities."""
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, pred))
    if metric == "f1":
        return float(skm.f1_score(y_true, pred, average="binary" if proba is not None and proba.shape[1] == 2 else "macro"))
    if metric == "roc_auc":
        if proba is None:
            raise ValueError("roc_auc needs probabilities")
        if proba.shape[1] == 2:
            return float(skm.roc_auc_score(y_true, proba[:, 1]))
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=np.arange(proba.shape[1])))
    if metric == "rmse":
        return float(np.sqrt(skm.mean_squared_error(y_true, pred)))
    if metric == "r2":
        return float(skm.r2_score(y_true, pred))
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(MODES)}")


def all_scores(task: str, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None = None) -> dict[str, float]:
    """Every metric that fits the task, for the model card."""
    names = ("accuracy", "f1", "roc_auc") if task == "classification" else ("rmse", "r2")
    out = {}
    for name in names:
        try:
            out[name] = score(name, y_true, pred, proba)
        except ValueError:  # e.g. roc_auc when a class is absent from the split
            continue
    return out


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` beats ``b`` under ``metric``."""
    return a < b if MODES[metric] == "min" else a > b
