"""A weighted ensemble of the sweep's top trials (Caruana et al., 2004), one ONNX graph.

The search leaves a leaderboard of configurations that each did well on validation; averaging a
few of them usually beats the single best. Candidates are each family's best completed trial,
then the next best (same ``k`` as the winner, so they share one input), refitted here on the
driver with the trial's own settings: the sweep's models live in trial processes that are gone.
Greedy selection with replacement picks the weights (a member picked 3 times of 20 weighs 0.15),
on out-of-fold predictions over train + validation when the validation split has under
``OOF_BELOW_VAL_ROWS`` rows and on the validation split above that; the ensemble is kept only
when it beats the best candidate scored the same way. Candidates are capped by the time their
trials took (``ENSEMBLE_TIME_SHARE`` of the sweep's wall time per fit of each).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automodel.data import Dataset
from automodel.metrics import better, score_raw
from automodel.models import FAMILIES, Family
from automodel.models._base import fit_threads
from automodel.search._result import SearchResult

MAX_MEMBERS = 8
ROUNDS = 20
ENSEMBLE_TIME_SHARE = 0.25  # of the sweep's wall time, for fitting the candidates once
OOF_FOLDS = 5
OOF_BELOW_VAL_ROWS = 1_000  # validation rows below which candidates are scored out of fold


@dataclass
class Ensemble:
    """Fitted members and their weights; predicts, and exports as one ONNX graph."""

    task: str
    n_outputs: int
    members: list[Family]
    weights: list[float]
    val_score: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    fitted: bool = True  # False: members chosen out of fold, not yet fitted on a whole split
    # the members' ONNX graphs, exported beside their final fits (None: at to_onnx)
    exported: list[tuple[bytes, str]] | None = None
    name = "ensemble"
    kind = "ensemble"

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        return sum(w * _raw(m, X) for m, w in zip(self.members, self.weights)).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.predict_raw(X)
        return out.argmax(axis=1) if self.task == "classification" else out.reshape(-1)

    @property
    def params(self) -> dict[str, Any]:
        """What the card records: each member's family, parameters and weight."""
        return {
            "members": [
                {
                    "family": m.name,
                    "params": json.loads(json.dumps(m.params, default=str)),
                    "weight": w,
                }
                for m, w in zip(self.members, self.weights)
            ]
        }

    def to_onnx(self) -> tuple[bytes, str]:
        """One graph: every member reads ``input``; the output is their weighted sum."""
        graphs = self.exported or [m.to_onnx() for m in self.members]
        return merge_onnx(graphs, self.weights, self.task == "classification")

    def final(self, data: Dataset, *, refit: bool) -> Ensemble:
        """The ensemble for the artifact: with ``refit``, each member trained again on train +
        validation (the weights stay those chosen on validation); the card's ``train`` section in
        ``info``."""
        start = time.time()
        members = self.members
        exported = None
        # the rows the members learn from: train (+ validation with refit); the pipeline builds
        # an ensemble only on data this process holds whole, so they are every row there is
        rows = len(data.X_train) + (len(data.X_val) if refit else 0)
        if refit or not self.fitted:
            X, y = data.X_train, data.y_train
            if refit:
                X = np.concatenate([X, data.X_val])
                y = np.concatenate([y, data.y_val])
            # each member exported as soon as it is fitted: a forest's conversion (pure Python)
            # runs beside the next member's fit
            done = run_fits([(m, _fit_export(m.fresh(), X, y)) for m in self.members])
            members, exported = [m for m, _ in done], [graph for _, graph in done]
        info = {
            "workers": 1,
            "use_gpu": False,
            "restarts": 0,
            "backend": "local",
            "refit": refit,
            "rows_seen": rows,
            "rows_available": rows,
            "wall_s": round(self.info.get("fit_s", 0.0) + time.time() - start, 2),
            "ensemble": self.info,
        }
        return Ensemble(
            self.task,
            self.n_outputs,
            members,
            self.weights,
            self.val_score,
            info,
            exported=exported,
        )


def _raw(model: Family, X: np.ndarray) -> np.ndarray:
    out = model.predict_raw(X)
    return out if model.task == "classification" else out.reshape(-1, 1)


def greedy_weights(
    preds: list[np.ndarray], y: np.ndarray, task: str, metric: str, rounds: int = ROUNDS
) -> tuple[list[float], float]:
    """Caruana's forward selection with replacement: weights (summing to 1) and their val score."""
    total, picks, best = None, Counter(), None
    for r in range(rounds):
        scores = [
            score_raw(task, metric, y, (p if total is None else total + p) / (r + 1)) for p in preds
        ]
        i = (
            max(range(len(preds)), key=lambda j: (scores[j], -j))
            if _maximize(metric)
            else min(range(len(preds)), key=lambda j: (scores[j], j))
        )
        total = preds[i] if total is None else total + preds[i]
        picks[i] += 1
        best = scores[i]
    weights = [picks[i] / rounds for i in range(len(preds))]
    return weights, float(best)


def _maximize(metric: str) -> bool:
    return better(metric, 1.0, 0.0)


def select_ensemble(
    spec: Any,
    data: Dataset,
    result: SearchResult,
    *,
    progress: Any = None,
    budget_s: float | None = None,
) -> Ensemble | None:
    """The ensemble of the top trials, when it beats the best of them; else None.

    ``data`` holds the winner's features (``k``) already selected, as the final fit sees them.
    Candidates are the best completed trial of each family, then the next best overall (a mix of
    families errs differently, which is what averaging needs). With a validation split under
    ``OOF_BELOW_VAL_ROWS`` rows, too noisy to pick weights or even the winner on (one row of 50
    moves r2 by points), the candidates are scored on ``OOF_FOLDS``-fold out-of-fold predictions
    over train + validation; larger splits score on validation, as the search did. Candidates
    whose fits would not fit ``budget_s`` (what a run's time budget leaves for the ensemble and
    its refit) are left out, and without the winner among them there is no ensemble: "best
    single" would then be the best of the cheap ones (a 30 s run on seattle_weather kept svm +
    logistic at 0.69 out of fold over its extra-trees winner at 0.86 on validation, and scored
    0.67 on test where the winner alone scores 0.77).
    """
    start = time.time()
    metric, task = result.metric, data.task
    board = candidates(result)
    folds = OOF_FOLDS if len(data.X_val) < OOF_BELOW_VAL_ROWS else 0
    rows = _within_budget(board, folds, result.wall_s, budget_s)
    if len(rows) < 2:
        return None
    members = [_member(spec, data, row) for row in rows]
    if folds:
        X = np.concatenate([data.X_train, data.X_val])
        y = np.concatenate([data.y_train, data.y_val])
        preds = out_of_fold_all(members, X, y, folds, seed=spec.data.seed)
        scored_on = f"{folds}-fold out-of-fold on train + validation ({len(y)} rows)"
    else:
        y = data.y_val
        members = run_fits([(m, _fit(m, data.X_train, data.y_train)) for m in members])
        preds = [_raw(m, data.X_val) for m in members]
        scored_on = f"validation ({len(y)} rows)"
    weights, ens_score = greedy_weights(preds, y, task, metric)
    singles = [score_raw(task, metric, y, p) for p in preds]
    single = max(singles) if _maximize(metric) else min(singles)
    kept = [(m, w) for m, w in zip(members, weights) if w > 0]
    info = {
        "candidates": len(members),
        "members": len(kept),
        "val_score": ens_score,
        "best_single_val": single,
        "scored_on": scored_on,
        "fit_s": round(time.time() - start, 2),
    }
    keep = len(kept) > 1 and better(metric, ens_score, single)
    if progress is not None:
        progress(
            "ensemble",
            f"{len(kept)} of {len(members)} candidates ({', '.join(m.name for m, _ in kept)}), "
            f"{metric} {ens_score:.4f} vs best single {single:.4f} on {scored_on}: "
            + ("kept" if keep else "not kept"),
        )
    if not keep:
        return None
    return Ensemble(
        task,
        data.n_outputs,
        [m for m, _ in kept],
        [w for _, w in kept],
        ens_score,
        info,
        fitted=not folds,
    )


def _within_budget(board: Any, folds: int, sweep_s: float, budget_s: float | None) -> list[Any]:
    """The candidates whose estimated fits fit the budget; [] unless the winner (the first row)
    is among them.

    A candidate costs about its trial's time a fit: ``folds`` fits out of fold (each on
    (folds - 1) / folds of train + validation, about a trial's rows), one on the validation split;
    then one more for the final refit. ``budget_s`` (what a run's time budget leaves, refit
    included) is shared accordingly, with one fit's share more kept back for what the estimate
    misses (a trial's time is measured inside it; the driver's fits run beside Ray's processes);
    without it, ``ENSEMBLE_TIME_SHARE`` of the sweep's time a fit.
    """
    fits = max(1, folds)
    budget = max(5.0, ENSEMBLE_TIME_SHARE * fits * sweep_s)
    if budget_s is not None:
        budget = min(budget, budget_s * fits / (fits + 2))
    rows, spent = [], 0.0
    for _, row in board.iterrows():
        took = fits * float(row.time_s)
        if spent + took > budget:
            if not rows:
                return []  # not without the winner: it is what the ensemble must beat
            continue  # a cheaper candidate further down may still fit
        rows.append(row)
        spent += took
        if len(rows) == MAX_MEMBERS:
            break
    return rows


def candidates(result: SearchResult) -> Any:
    """Completed trials with the winner's ``k`` (so members share one input), distinct configs:
    each family's best first (best family first, so the winner leads), then the rest by score."""
    board = result.leaderboard
    metric = result.metric
    k = "" if result.k is None else result.k
    done = board[(board.status == "completed") & board[metric].notna()]
    done = done[done.k.astype(str) == str(k)].drop_duplicates(subset=["family", "params"])
    firsts = ~done.family.duplicated()
    return pd.concat([done[firsts], done[~firsts]])


def _member(spec: Any, data: Dataset, row: Any) -> Family:
    cls = FAMILIES[row.family]
    model = cls.for_data(
        data, json.loads(row.params), seed=spec.data.seed, max_steps=spec.search.max_epochs
    )
    model.n_jobs = (
        1  # OpenMP threads spin-wait badly on a loaded machine; small data: one is enough
    )
    if cls.kind == "torch":  # the trials' recipe settings (schedule, warm-up, clipping, AMP)
        model.train_settings = spec.train
    return model


def out_of_fold(
    model: Family, X: np.ndarray, y: np.ndarray, folds: int, *, seed: int
) -> np.ndarray:
    """``model``'s predictions for every row of ``X``, each from a fresh copy fitted without the
    fold that holds the row (stratified for classification when every class has ``folds`` rows)."""
    return out_of_fold_all([model], X, y, folds, seed=seed)[0]


def out_of_fold_all(
    models: list[Family], X: np.ndarray, y: np.ndarray, folds: int, *, seed: int
) -> list[np.ndarray]:
    """:func:`out_of_fold` for each of ``models`` (one task), over the same folds; the
    models x folds fits share the driver's cores (:func:`run_fits`)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    classification = models[0].task == "classification"
    stratify = classification and np.bincount(y.astype(np.int64)).min() >= folds
    split = (StratifiedKFold if stratify else KFold)(folds, shuffle=True, random_state=seed)
    parts = list(split.split(X, y))

    def fold(model: Family, fit_rows: np.ndarray, held: np.ndarray) -> Callable[[], np.ndarray]:
        # the fitted copy predicts its held-out rows and is let go (forests are large)
        return lambda: _raw(model.fresh().fit(X[fit_rows], y[fit_rows]), X[held])

    raw = run_fits([(m, fold(m, *part)) for m in models for part in parts])
    outs = []
    for i, model in enumerate(models):
        out = np.zeros((len(y), model.n_outputs if classification else 1), dtype=np.float32)
        for j, (_, held) in enumerate(parts):
            out[held] = raw[i * len(parts) + j]
        outs.append(out)
    return outs


# Fits the driver runs at once: its cores, up to this many (the GIL and memory limit more).
MAX_LANES = 4


def _fit(model: Family, X: np.ndarray, y: np.ndarray) -> Callable[[], Family]:
    return lambda: model.fit(X, y)


def _fit_export(
    model: Family, X: np.ndarray, y: np.ndarray
) -> Callable[[], tuple[Family, tuple[bytes, str]]]:
    def job() -> tuple[Family, tuple[bytes, str]]:
        fitted = model.fit(X, y)
        return fitted, fitted.to_onnx()

    return job


def run_fits(jobs: list[tuple[Family, Callable[[], Any]]]) -> list[Any]:
    """Each job's result (a fit, or a fit and its predictions), in order, on the driver's cores.

    The search is over when the ensemble fits, so the driver's cores are free: the jobs run on
    one thread a core (up to ``MAX_LANES``), each fit with one thread of its own as in the trials
    (:func:`fit_threads`); scikit-learn's tree builders, libsvm and torch's kernels release the
    GIL. Torch fits run one at a time: a torch fit seeds and draws from torch's global random
    generator (initial weights, dropout), which two at once would interleave, so the same spec
    would give another model. Torch jobs start first (they are the long ones); the others fill
    the other threads.
    """
    import threading

    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lanes = max(1, min(MAX_LANES, cores or 1, len(jobs)))
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0].kind != "torch")
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    cond = threading.Condition()
    torch_busy = False

    def take() -> int | None:
        """The next job this thread may run (waits while only a busy torch job is left)."""
        nonlocal torch_busy
        with cond:
            while order and not errors:
                i = next(
                    (i for i in order if not (torch_busy and jobs[i][0].kind == "torch")), None
                )
                if i is not None:
                    order.remove(i)
                    torch_busy = torch_busy or jobs[i][0].kind == "torch"
                    return i
                cond.wait()
            return None

    def lane() -> None:
        nonlocal torch_busy
        with threadpool_limits(1):  # OpenMP's thread count is per calling thread
            while (i := take()) is not None:
                try:
                    results[i] = jobs[i][1]()
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    with cond:
                        if jobs[i][0].kind == "torch":
                            torch_busy = False
                        cond.notify_all()

    with fit_threads():
        if lanes == 1:
            return [fn() for _, fn in jobs]
        with ThreadPoolExecutor(lanes, thread_name_prefix="automodel-fit") as pool:
            for f in [pool.submit(lane) for _ in range(lanes)]:
                f.result()
    if errors:
        raise errors[0]
    return results


def merge_onnx(
    models: list[tuple[bytes, str]], weights: list[float], classification: bool
) -> tuple[bytes, str]:
    """Members' ONNX graphs side by side on one ``input``; output = sum of weight x member output."""
    import onnx
    from onnx import compose, helper, numpy_helper

    loaded = [onnx.load_from_string(b) for b, _ in models]
    opsets: dict[str, int] = {}
    for m in loaded:
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    target = opsets.get("", 17)
    nodes, inits, terms = [], [], []
    out_name = "probabilities" if classification else "variable"
    for i, (m, (_, output)) in enumerate(zip(loaded, models)):
        if (
            m.opset_import
            and next((o.version for o in m.opset_import if o.domain == ""), target) != target
        ):
            m = onnx.version_converter.convert_version(m, target)
        m = compose.add_prefix(m, prefix=f"m{i}_")
        g = m.graph
        nodes.append(helper.make_node("Identity", ["input"], [f"m{i}_input"]))
        nodes.extend(g.node)
        inits.extend(g.initializer)
        member_out = f"m{i}_{output}"
        if not classification:
            shape = numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), f"m{i}_shape")
            inits.append(shape)
            nodes.append(helper.make_node("Reshape", [member_out, f"m{i}_shape"], [f"m{i}_col"]))
            member_out = f"m{i}_col"
        w = numpy_helper.from_array(np.array(weights[i], dtype=np.float32), f"m{i}_weight")
        inits.append(w)
        nodes.append(helper.make_node("Mul", [member_out, f"m{i}_weight"], [f"m{i}_weighted"]))
        terms.append(f"m{i}_weighted")
    nodes.append(helper.make_node("Sum", terms, [out_name]))
    n_features = loaded[0].graph.input[0].type.tensor_type.shape.dim[1].dim_value
    graph = helper.make_graph(
        nodes,
        "ensemble",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, [None, None])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    model.ir_version = max(m.ir_version for m in loaded)
    onnx.checker.check_model(model)
    return model.SerializeToString(), out_name
