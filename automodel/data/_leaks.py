"""Columns that almost determine the target: a warning before the search, with the key to drop them.

A table often carries the answer twice (Wage.csv: ``logwage`` beside ``wage``); a model that reads
it scores near perfectly and learns nothing usable. The check runs on the training rows the data
stage already holds (in memory: the training split, at most ``MAX_ROWS`` of it; streamed: the
search's sample), so it reads nothing more:

- numeric column, numeric target: the larger of |Pearson| and |Spearman| correlation (a log or
  any monotone copy has Spearman 1);
- categorical column, numeric target: the correlation ratio (eta), how much of the target's
  variance the column's groups explain;
- any column, class target: the uncertainty coefficient, the mutual information normalised by the
  target's entropy (1: the column fixes the class), numeric columns in quantile bins.

A column with more distinct values (or bins) than a tenth of the rows is skipped for the last two:
on few rows such a column "determines" anything by chance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

THRESHOLD = 0.98
MAX_ROWS = 5_000  # enough to tell 0.98 from chance; the check stays well under a second
BINS = 32


def near_copies(
    frame: pd.DataFrame, target: str, task: str, columns: list[str], seed: int = 0
) -> list[tuple[str, float, str]]:
    """(column, score, measure) for each of ``columns`` that almost determines ``target``."""
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=seed)
    frame = frame[frame[target].notna()]
    y = frame[target]
    y_ranks = _ranks(y.to_numpy(dtype=float)) if task == "regression" else None
    found = []
    with np.errstate(all="ignore"):  # an inf or constant column scores NaN: no match, no noise
        for name in columns:
            _score_column(frame, name, y, y_ranks, task, found)
    return found


def _score_column(
    frame: pd.DataFrame, name: str, y: pd.Series, y_ranks, task: str, found: list
) -> None:
    """Append ``(name, score, measure)`` to ``found`` when column ``name`` almost fixes ``y``."""
    x = frame[name]
    keep = x.notna().to_numpy()
    if keep.sum() < 10:
        return
    x, yk = x[keep], y[keep]
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if task == "regression":
        yv = yk.to_numpy(dtype=float)
        if numeric:
            ry = y_ranks if keep.all() else None
            score, measure = _correlation(x.to_numpy(dtype=float), yv, ry), "|correlation|"
        else:
            score, measure = _eta(x.astype(str).to_numpy(), yv), "correlation ratio"
    else:
        codes = _binned(x) if numeric else pd.factorize(x.astype(str))[0]
        score = _uncertainty(codes, pd.factorize(yk)[0])
        measure = "normalised mutual information"
    if score is not None and np.isfinite(score) and score >= THRESHOLD:
        found.append((str(name), float(score), measure))


def warn_near_copies(
    frame: pd.DataFrame, target: str, task: str, columns: list[str], seed: int = 0
) -> list[tuple[str, float, str]]:
    """Warn once a column that almost determines the target, naming the key that leaves it out."""
    found = near_copies(frame, target, task, columns, seed)
    for name, score, measure in found:
        warnings.warn(
            f"column {name!r} almost determines the target {target!r} ({measure} {score:.3f}): "
            f"a copy of the answer? Leave it out with `data.drop: [{name}]`",
            stacklevel=3,
        )
    return found


def _correlation(x: np.ndarray, y: np.ndarray, y_ranks: np.ndarray | None) -> float | None:
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    pearson = abs(float(np.corrcoef(x, y)[0, 1]))
    y_ranks = _ranks(y) if y_ranks is None else y_ranks
    spearman = abs(float(np.corrcoef(_ranks(x), y_ranks)[0, 1]))  # ties broken by order
    return max(pearson, spearman)


def _ranks(v: np.ndarray) -> np.ndarray:
    r = np.empty(len(v))
    r[np.argsort(v, kind="stable")] = np.arange(len(v))
    return r


def _eta(groups: np.ndarray, y: np.ndarray) -> float | None:
    codes, uniques = pd.factorize(groups)
    if len(uniques) < 2 or len(uniques) > len(y) / 10 or np.var(y) == 0:
        return None
    means = np.bincount(codes, weights=y) / np.bincount(codes)
    between = float(np.mean((means[codes] - y.mean()) ** 2))
    return float(np.sqrt(between / np.var(y)))


def _binned(x: pd.Series) -> np.ndarray:
    """Quantile bins of a numeric column (its own values when it has few)."""
    codes, uniques = pd.factorize(x)
    if len(uniques) <= BINS:
        return codes
    return (_ranks(x.to_numpy(dtype=float)) * BINS // len(x)).astype(np.int64)


def _uncertainty(x: np.ndarray, y: np.ndarray) -> float | None:
    """I(X; Y) / H(Y): the share of the target's entropy the column explains."""
    kx, ky = int(x.max()) + 1, int(y.max()) + 1
    if ky < 2 or kx < 2 or kx > len(y) / 10:
        return None
    joint = np.bincount(x * ky + y, minlength=kx * ky).reshape(kx, ky) / len(y)
    px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / (px @ py)[nz])).sum())
    hy = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    return mi / hy if hy > 0 else None
