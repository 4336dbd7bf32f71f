"""In-process training: scikit-learn families, and torch families too small for Ray Train.

A torch family here trains exactly as a search trial does (its ``step``, i.e. the shared recipe's
:func:`~automodel.models._recipe.train_epoch`), with the final fit's bookkeeping around it:
validation each epoch, early stopping that keeps the best epoch, progress lines. A refit trains
on train + validation for the epochs the search found and keeps the last weights.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from automodel.data import Dataset
from automodel.metrics import score
from automodel.models import FAMILIES, Family
from automodel.progress import Progress
from automodel.spec import Spec
from automodel.train._config import early_stopping
from automodel.train._ledger import epoch_line, stop_line
from automodel.train._result import Refit, TrainedModel
from automodel.train._workers import fit_threads, free_cpus


def fit_local(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    metric: str,
    progress: Progress,
    refit: Refit | None = None,
) -> TrainedModel:
    """Fit ``family`` in this process; torch families on ``cuda`` when ``train.use_gpu``."""
    start = time.time()
    t = spec.train
    torch_family = FAMILIES[family].kind == "torch"
    if torch_family:
        epochs = refit.epochs if refit else t.epochs
        horizon = max(epochs, (refit.schedule_epochs or epochs) if refit else epochs)
    else:  # trees count their fidelity steps against search.max_epochs, as in the trial
        epochs = horizon = spec.search.max_epochs
    model = FAMILIES[family].for_data(dataset, params, seed=spec.data.seed, max_steps=horizon)
    if torch_family:
        model.train_settings = t
        model.device = "cuda" if t.use_gpu else "cpu"
    else:
        model.n_jobs = free_cpus()
        epochs = model.n_steps() if refit is None else min(refit.epochs, model.n_steps())
    X, y = dataset.X_train, dataset.y_train
    if refit is not None:
        X, y = np.concatenate([X, dataset.X_val]), np.concatenate([y, dataset.y_val])

    with fit_threads():
        return _fit(spec, dataset, model, family, X, y, epochs, metric, progress, refit, start)


def _fit(
    spec, dataset, model, family, X, y, epochs, metric, progress, refit, start
) -> TrainedModel:
    t = spec.train
    torch_family = model.kind == "torch"
    history: list[dict[str, Any]] = []
    state = {"best_score": None, "best_epoch": 0, "bad_epochs": 0}
    best, stopped, stride = None, False, max(1, epochs // 10)
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        loss = model.step(X, y)
        val = None if refit else _val_score(model, dataset.X_val, dataset.y_val, metric)
        row = {
            "epoch": epoch,
            "train_loss": loss,
            f"val_{metric}": val,
            "lr": getattr(model, "last_epoch_", {}).get("lr"),
            "time_s": round(time.time() - t0, 3),
            "restarted": False,
        }
        history.append(row)
        if val is not None:
            keep, stopped = early_stopping(state, epoch, val, metric, t.early_stopping_patience)
            stopped = stopped and torch_family  # tree steps grow the model: no early stop there
            if keep and torch_family:
                best = {k: v.detach().cpu().clone() for k, v in model.module_.state_dict().items()}
        if torch_family and (epoch == 1 or epoch % stride == 0 or epoch == epochs or stopped):
            progress("train", epoch_line(row, epochs, metric))
        if stopped:
            progress(
                "train",
                stop_line(
                    {**row, "best_epoch": state["best_epoch"]},
                    epochs,
                    metric,
                    t.early_stopping_patience,
                ),
            )
            break
    kept = state["best_epoch"] if stopped else len(history)
    if torch_family:
        model.release_rows()
        if stopped:  # early stopping restores the best epoch's weights
            model.module_.load_state_dict(best)
    fit_s = time.time() - start
    info = {
        "workers": 1,
        "use_gpu": bool(torch_family and t.use_gpu),
        "epochs": len(history),
        "restarts": 0,
        "wall_s": round(fit_s, 2),
        "backend": "local",
        "rows_seen": len(X),  # train + validation after a refit
        # streamed data: every row of those splits in the files (this process holds a sample)
        "rows_available": _available(dataset, refit is not None, len(X)),
        "kept_epoch": kept,
        "stopped_early": stopped,
        "startup_s": 0.0,
        "fit_s": round(fit_s, 2),
    }
    if torch_family:
        recipe = model.recipe_
        info.update(
            batch_size=recipe.batch_size,
            optimizer=recipe.optimizer,
            lr=recipe.lr,
            lr_schedule=recipe.schedule,
            device=model.last_epoch_["device"],
            bf16=model.last_epoch_["bf16"],
            recipe=model.last_epoch_["recipe"],
            epoch_s=round(float(np.median([r["time_s"] for r in history])), 3),
        )
    state_dict = (
        {k: v.detach().cpu() for k, v in model.module_.state_dict().items()}
        if torch_family
        else None
    )
    val_score = refit.val_score if refit else history[kept - 1][f"val_{metric}"]
    return TrainedModel(model, family, model.params, info, history, state_dict, val_score)


def _available(dataset: Dataset, refit: bool, held: int) -> int:
    stream = dataset.stream
    if stream is None:
        return held
    return stream.counts["train"] + (stream.counts["val"] if refit else 0)


def _val_score(model: Family, X: np.ndarray, y: np.ndarray, metric: str) -> float:
    raw = model.predict_raw(X)
    if model.task == "classification":
        return score(metric, y, raw.argmax(axis=1), raw)
    return score(metric, y, raw.reshape(-1))


__all__ = ["fit_local"]
