"""Final fits on one Ray worker, for streamed data whose rows the driver never holds.

Two kinds of family fit here rather than on Ray Train:

- **Linear models** (``logistic``: logistic regression, or ridge for regression) stream over
  every training row. Ridge is exact in one pass: the worker sums ``X'X`` and ``X'y`` over the
  files and solves the normal equations. Logistic regression minimises the objective
  scikit-learn's solver does (mean log-loss + ``||w||^2 / (2 C n)``) by mini-batch Adam over a few
  passes, with the weights averaged over the last pass; the rows are held in the worker's memory
  when they fit ``train.max_rows_in_memory`` and read from the files again each pass when not.
  The result goes into a scikit-learn ``LogisticRegression`` / ``Ridge``, so ONNX export and
  serving are those of an in-process fit.
- **Families that need every row in memory** (random forest, extra trees, SVM, histogram
  gradient boosting) take as many rows as ``train.max_rows_in_memory`` allows, the ones with the
  lowest sample hash (:func:`~automodel.train._data.rows_by_hash`: the search's sample is among
  them), and fit there.

Never on the driver: its memory holds plans, statistics and the search's sample. The card's
``train.rows_seen`` / ``train.rows_available`` say how many rows the fit used of how many.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

LINEAR_PASSES = 4
LINEAR_BATCH = 1024
LINEAR_LR = 0.02
CHUNK_ROWS = 65536  # rows shuffled together when the passes stream from the files
MEMORY_SHARE = 0.25  # of the worker's available memory, for the rows of an in-memory fit
ROW_COPIES = 4  # encoded rows, the family's own copy, its working memory: 4x a row's bytes


def max_rows(setting: int | str, n_features: int) -> int:
    """``train.max_rows_in_memory`` on this worker: the number, or for ``auto`` what
    ``MEMORY_SHARE`` of its available memory holds at ``ROW_COPIES`` x a row's encoded bytes."""
    if setting != "auto":
        return int(setting)
    import psutil

    from automodel.train._data import row_bytes

    budget = psutil.virtual_memory().available * MEMORY_SHARE
    return max(1000, int(budget // (ROW_COPIES * row_bytes(n_features))))


def fit_one_worker(spec: Any, dataset: Any, family: str, params: dict, *, metric, progress, refit):
    """Fit ``family`` on one Ray worker from the streamed files (see the module's docstring)."""
    from automodel.cluster import ray_session

    with ray_session(spec.runtime):
        return _fit(spec, dataset, family, params, metric, progress, refit)


def _fit(spec, dataset, family, params, metric, progress, refit):
    import ray

    from automodel.data._rowsplit import TRAIN, VAL
    from automodel.models import FAMILIES
    from automodel.train._local import _val_score
    from automodel.train._result import TrainedModel

    start = time.time()
    t = spec.train
    cpus = max(1, int(t.resources_per_worker.get("CPU", 1)))
    model = FAMILIES[family].for_data(
        dataset, params, seed=spec.data.seed, max_steps=spec.search.max_epochs
    )
    model.n_jobs = cpus
    steps = model.n_steps() if refit is None else min(refit.epochs, model.n_steps())
    splits = (TRAIN, VAL) if refit is not None else (TRAIN,)
    source = dataset.stream
    available = sum(source.counts[k] for k in ("train", "val")[: len(splits)])
    job = dict(
        source=source,
        prep=dataset.preprocessor,
        splits=splits,
        limit=t.max_rows_in_memory,
        n_features=dataset.n_features,
    )
    if family == "logistic":
        what = f"streaming {'ridge' if dataset.task == 'regression' else 'logistic'} solver"
        weights = _class_weights(model, dataset.y_train)
        remote = ray.remote(num_cpus=cpus)(_linear_on_worker)
        ref = remote.remote(model, weights=weights, seed=spec.data.seed, **job)
    else:
        what = f"up to train.max_rows_in_memory ({t.max_rows_in_memory}) rows by the row hash"
        remote = ray.remote(num_cpus=cpus)(_in_memory_on_worker)
        ref = remote.remote(model, steps=steps, **job)
    progress("train", f"{family}: {available:,} rows available, on one Ray worker ({what})")
    model, out = ray.get(ref)
    wall = time.time() - start
    val = None if refit else _val_score(model, dataset.X_val, dataset.y_val, metric)
    history = [
        {
            "epoch": model.steps_done_,
            "train_loss": out.get("loss"),
            f"val_{metric}": val,
            "lr": None,
            "time_s": round(out["fit_s"], 3),
            "restarted": False,
        }
    ]
    info = {
        "workers": 1,
        "use_gpu": False,
        "epochs": model.steps_done_,
        "restarts": 0,
        "wall_s": round(wall, 2),
        "backend": "ray_worker",
        "data": out["data"],
        "rows_seen": out["rows_seen"],
        "rows_available": available,
        "max_rows_in_memory": out["limit"],
        "solver": out.get("solver"),
        "passes": out.get("passes"),
        "kept_epoch": model.steps_done_,
        "stopped_early": False,
        "startup_s": round(wall - out["read_s"] - out["fit_s"], 2),
        "read_s": round(out["read_s"], 2),
        "fit_s": round(out["fit_s"], 2),
    }
    val_score = refit.val_score if refit else val
    return TrainedModel(model, family, model.params, info, history, None, val_score)


def _class_weights(model: Any, y: np.ndarray) -> np.ndarray | None:
    """``class_weight: balanced`` per class, from the driver's rows (the sample's class shares)."""
    if model.task != "classification" or model.params.get("class_weight") != "balanced":
        return None
    counts = np.bincount(y.astype(int), minlength=model.n_outputs).astype(float)
    return len(y) / (model.n_outputs * np.maximum(counts, 1.0))


# ---- on the worker ------------------------------------------------------------------------------
def _in_memory_on_worker(model, *, source, prep, splits, limit, n_features, steps):
    from threadpoolctl import threadpool_limits

    from automodel.train._data import rows_by_hash

    limit = max_rows(limit, n_features)
    start = time.perf_counter()
    X, y, available = rows_by_hash(source, prep, splits, limit)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    with threadpool_limits(model.n_jobs):  # the CPUs Ray gave this task
        while model.steps_done_ < steps:
            model.step(X, y)
    info = {
        "rows_seen": len(y),
        "limit": limit,
        "data": "cached",
        "read_s": read_s,
        "fit_s": time.perf_counter() - start,
    }
    return model, info


def _linear_on_worker(model, *, source, prep, splits, limit, n_features, weights, seed):
    from automodel.train._data import rows_by_hash

    limit = max_rows(limit, n_features)
    available = sum(source.counts[k] for k in ("train", "val")[: len(splits)])
    start = time.perf_counter()
    if available <= limit:  # read once, every pass from memory
        X, y, _ = rows_by_hash(source, prep, splits, None)
        data = "cached"

        def chunks():
            yield X, y

    else:  # every pass reads the files again, a chunk at a time
        data = "streamed"

        def chunks():
            yield from _file_chunks(source, prep, splits)

    read_s = time.perf_counter() - start if data == "cached" else 0.0
    start = time.perf_counter()
    if model.task == "regression":
        solver = _Ridge(n_features, float(model.params["alpha"]))
        passes = 1
        for Xc, yc in chunks():
            solver.add(Xc, yc)
        seen = solver.n
        model.model_ = solver.estimator()
        loss = None
    else:
        solver = _Logistic(
            n_features, model.n_outputs, float(model.params["C"]), available, weights, seed
        )
        passes = LINEAR_PASSES
        for p in range(passes):
            solver.begin_pass(p, passes)
            for Xc, yc in chunks():
                solver.pass_over(Xc, yc)
        seen, loss = solver.rows_last_pass, solver.loss
        model.model_ = solver.estimator(model.params)
    model.steps_done_ = 1
    info = {
        "rows_seen": int(seen),
        "limit": limit,
        "data": data,
        "solver": "normal equations" if model.task == "regression" else "mini-batch Adam",
        "passes": passes,
        "loss": loss,
        "read_s": read_s,
        "fit_s": time.perf_counter() - start,
    }
    return model, info


def _file_chunks(source, prep, splits):
    """(X, y) of ``splits`` from every file, ``CHUNK_ROWS`` rows at a time."""
    from automodel.data._stream import batches_from_files

    for split in splits:
        for X, y, _ in batches_from_files(source, list(range(len(source.files))), prep, split):
            yield X, y


class _Ridge:
    """Ridge by the normal equations, summed over chunks: exactly scikit-learn's ``Ridge``
    (intercept unpenalised, fitted through the centred sums)."""

    def __init__(self, n_features: int, alpha: float):
        self.alpha, self.n = alpha, 0
        self.xtx = np.zeros((n_features + 1, n_features + 1))
        self.xty = np.zeros(n_features + 1)

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        Xa = np.hstack([np.asarray(X, np.float64), np.ones((len(X), 1))])
        self.xtx += Xa.T @ Xa
        self.xty += Xa.T @ np.asarray(y, np.float64)
        self.n += len(X)

    def estimator(self) -> Any:
        from sklearn.linear_model import Ridge

        penalty = np.eye(len(self.xty)) * self.alpha
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        coef = np.linalg.solve(self.xtx + penalty, self.xty)
        est = Ridge(alpha=self.alpha)
        est.coef_, est.intercept_ = coef[:-1], float(coef[-1])
        est.n_features_in_ = len(coef) - 1
        return est


class _Logistic:
    """Logistic regression (binary: one weight vector, else multinomial) by mini-batch Adam on
    scikit-learn's objective, ``C x sum of log-losses + ||W||^2 / 2`` divided by the rows: the
    learning rate decays (cosine) over the passes and the last pass's iterates are averaged."""

    def __init__(self, n_features, n_classes, C, n_rows, class_weights, seed):
        self.k = 1 if n_classes == 2 else n_classes
        self.n_classes = n_classes
        self.l2 = 1.0 / (C * max(n_rows, 1))
        self.W = np.zeros((n_features + 1, self.k))  # last row: the intercept
        self.m, self.v, self.t = np.zeros_like(self.W), np.zeros_like(self.W), 0
        self.avg, self.avg_n = np.zeros_like(self.W), 0
        self.class_weights = class_weights
        self.rng = np.random.default_rng(seed)
        self.rows_last_pass, self.loss = 0, None
        self.steps_total = None

    def begin_pass(self, p: int, passes: int) -> None:
        self.pass_, self.passes = p, passes
        self.rows_last_pass, self._loss_sum = 0, 0.0

    def _lr(self, frac: float) -> float:
        return LINEAR_LR * (0.5 * (1 + math.cos(math.pi * min(frac, 1.0))) * 0.98 + 0.02)

    def pass_over(self, X: np.ndarray, y: np.ndarray) -> None:
        order = self.rng.permutation(len(X))
        last = self.pass_ == self.passes - 1
        for s in range(0, len(order), LINEAR_BATCH):
            idx = order[s : s + LINEAR_BATCH]
            Xb = np.hstack([X[idx], np.ones((len(idx), 1), X.dtype)]).astype(np.float64)
            yb = y[idx].astype(int)
            grad, loss = self._grad(Xb, yb)
            self.t += 1
            frac = (self.pass_ + s / max(len(order), 1)) / self.passes
            self.m = 0.9 * self.m + 0.1 * grad
            self.v = 0.999 * self.v + 0.001 * grad * grad
            mhat = self.m / (1 - 0.9**self.t)
            vhat = self.v / (1 - 0.999**self.t)
            self.W -= self._lr(frac) * mhat / (np.sqrt(vhat) + 1e-8)
            if last:
                self.avg_n += 1
                self.avg += (self.W - self.avg) / self.avg_n
                self._loss_sum += loss * len(idx)
        self.rows_last_pass += len(X)
        if last:
            self.loss = self._loss_sum / max(self.rows_last_pass, 1)

    def _grad(self, Xb: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, float]:
        z = Xb @ self.W
        w = None if self.class_weights is None else self.class_weights[yb]
        if self.k == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            r = p - yb
            loss = -np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12))
        else:
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(p[np.arange(len(yb)), yb] + 1e-12))
            p[np.arange(len(yb)), yb] -= 1.0
            r = p
        r = r.reshape(len(yb), -1)
        if w is not None:
            r = r * w[:, None]
        grad = Xb.T @ r / len(yb)
        reg = self.l2 * self.W
        reg[-1] = 0.0  # the intercept is not penalised
        return grad + reg, float(loss)

    def estimator(self, params: dict) -> Any:
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(
            C=float(params["C"]),
            max_iter=int(params.get("max_iter", 500)),
            class_weight=params.get("class_weight"),
        )
        W = self.avg
        est.coef_ = np.ascontiguousarray(W[:-1].T)
        est.intercept_ = W[-1].copy()
        est.classes_ = np.arange(self.n_classes)
        est.n_features_in_ = W.shape[0] - 1
        est.n_iter_ = np.array([self.t])
        return est


__all__ = ["fit_one_worker", "max_rows"]
