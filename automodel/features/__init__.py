"""Feature selection: mutual-information ranking computed once, top-k kept per trial."""

from __future__ import annotations

import numpy as np

__all__ = ["rank_features", "top_k"]


def rank_features(
    X: np.ndarray, y: np.ndarray, task: str, seed: int = 0, max_rows: int = 20000
) -> np.ndarray:
    """Mutual information of each column with the target (higher is more informative).

    Subsamples to ``max_rows`` rows: the ranking is stable long before the estimate is exact.
    """
    # here: a trial that keeps top-k columns imports this module, never the ranking
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if len(X) > max_rows:
        rows = np.random.default_rng(seed).choice(len(X), max_rows, replace=False)
        X, y = X[rows], y[rows]
    fn = mutual_info_classif if task == "classification" else mutual_info_regression
    return fn(X, y, random_state=seed)


def top_k(scores: np.ndarray, k: int | None) -> list[int] | None:
    """Indices of the ``k`` best columns in their original order; None keeps all."""
    if k is None or k >= len(scores):
        return None
    best = np.argsort(-scores, kind="stable")[:k]
    return sorted(int(i) for i in best)
