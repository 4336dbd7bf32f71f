"""LightGBM and XGBoost fitted data-parallel, with Ray Train's LightGBMTrainer / XGBoostTrainer.

Used when ``train.num_workers`` is a number above one, and under ``auto`` when the rows stream
from files the driver holds only a sample of (``auto`` fits an in-memory table in one process:
a table a single machine holds trains in seconds there). Each worker reads its share of the
rows (its own files, or a Ray Dataset the driver built) and fits the family's own scikit-learn estimator
(:meth:`~automodel.models._boosting.LightGBM.estimator`, the parameters a trial used) on it;
the libraries join the shares: LightGBM through the network Ray Train sets up
(``get_network_params``, ``tree_learner: data_parallel``), XGBoost through the collective
communicator Ray Train opens around the training function. Rank 0 returns the fitted
estimator, so the family instance, its ONNX export, the artifact and serving are the ones an
in-process fit gives.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # workers import this module: keep the driver's imports out of their start-up
    from automodel.data import Dataset
    from automodel.progress import Progress
    from automodel.spec import Spec
    from automodel.train._result import Refit, TrainedModel

TRAINERS = {"lightgbm": "LightGBMTrainer", "xgboost": "XGBoostTrainer"}
HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


def boosting_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """One worker: read the shard, fit the family's estimator with the others, rank 0 returns it."""
    import ray
    import ray.train

    from automodel.models import FAMILIES
    from automodel.train._data import shard_rows

    c = config
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    start = time.perf_counter()
    if c["stream"] is not None:  # streamed files: this worker reads its own files from storage
        X, y = shard_rows(c["stream"], rank, world)
    else:
        shard = ray.train.get_dataset_shard("train")
        parts = list(shard.iter_batches(batch_size=65536, batch_format="numpy"))
        X = np.concatenate([p["X"] for p in parts])
        y = np.concatenate([p["y"] for p in parts])
    read_s = time.perf_counter() - start
    # the driver sums every worker's count: the rows the model saw, not a share's
    ray.get(c["ledger"].epoch.remote({"rank": rank, "rows": len(y), "read_s": read_s}))
    if c["classes"] is not None:
        # the scikit-learn wrappers read the classes off the rows they see: every worker must
        # see all of them, or the workers would grow trees for different label sets
        seen = np.unique(y)
        if not np.array_equal(seen, c["classes"]):
            missing = sorted(set(c["classes"].tolist()) - set(seen.tolist()))
            raise ValueError(
                f"worker {rank}'s share of the rows has no row of class(es) {missing}; "
                "use fewer train.num_workers for this table"
            )
    model = FAMILIES[c["family"]](
        c["task"],
        c["n_features"],
        c["n_outputs"],
        c["params"],
        seed=c["seed"],
        max_steps=c["horizon"],
    )
    model.n_jobs = c["threads"]
    extra: dict[str, Any] = {}
    if c["family"] == "lightgbm":
        from ray.train.lightgbm import get_network_params

        # pre_partition: each worker holds its own rows (Ray Data split them), none is shared
        extra = {"tree_learner": "data_parallel", "pre_partition": True, **get_network_params()}
    elif c["use_gpu"]:  # XGBoost's hist learner on the GPU Ray Train gave this worker
        extra = {"device": "cuda"}
    fit_kwargs: dict[str, Any] = {}
    if c["val"] is not None:
        # every worker scores the same validation rows, so all of them stop at the same round
        X_val, y_val = ray.get(c["val"])
        fit_kwargs["eval_set"] = [(X_val, y_val)]
        if c["family"] == "lightgbm":
            import lightgbm

            fit_kwargs["callbacks"] = [lightgbm.early_stopping(c["patience"], verbose=False)]
        else:
            extra["early_stopping_rounds"] = c["patience"]
            fit_kwargs["verbose"] = False
    estimator = model.estimator(c["trees"], **extra)
    weights = None if c["class_weights"] is None else c["class_weights"][y.astype(int)]
    start = time.perf_counter()
    estimator.fit(X, y, sample_weight=weights, **fit_kwargs)
    fit_s = time.perf_counter() - start
    best = getattr(estimator, "best_iteration_", None) or getattr(estimator, "best_iteration", None)
    return {
        "estimator": estimator if rank == 0 else None,
        "fit_s": fit_s,
        "read_s": read_s,
        "rows": len(y),
        "best_round": None
        if c["val"] is None or best is None
        else int(best) + (c["family"] == "xgboost"),
    }


def fit_boosting(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    run_dir: str | Path,
    metric: str,
    progress: Progress,
    workers: int,
    refit: Refit | None = None,
) -> TrainedModel:
    """Fit ``family`` (lightgbm or xgboost) on ``workers`` Ray Train workers.

    The trees are the ones the in-process fit grows: all ``n_estimators``, or after ``refit``
    the count the search's winner reached, on train + validation. Validation is scored on the
    driver after the fit, as in-process.
    """
    from automodel.cluster import ray_session

    with ray_session(spec.runtime):
        return _fit(spec, dataset, family, params, run_dir, metric, progress, workers, refit)


def _fit(spec, dataset, family, params, run_dir, metric, progress, world, refit) -> TrainedModel:
    # Train V2 by name, as train/_ray.py does: `ray.train` may have picked V1 on first import.
    import ray
    from ray.train.v2.api.config import RunConfig, ScalingConfig
    from ray.train.v2.api.exceptions import ControllerError, WorkerGroupError

    from automodel.errors import TrainingError
    from automodel.models import FAMILIES
    from automodel.train._data import to_ray_dataset, worker_stream
    from automodel.train._ledger import start_ledger
    from automodel.train._local import _val_score
    from automodel.train._ray import (
        EXPERIMENT,
        _root_cause,
        _storage,
        _storage_path,
        _worker_failures,
    )
    from automodel.train._result import TrainedModel

    t = spec.train
    start = time.time()
    # trees count their fidelity steps against search.max_epochs, as in the trial
    model = FAMILIES[family].for_data(
        dataset, params, seed=spec.data.seed, max_steps=spec.search.max_epochs
    )
    steps = model.n_steps() if refit is None else min(refit.epochs, model.n_steps())
    X, y = dataset.X_train, dataset.y_train
    if refit is not None:  # the validation rows join the training rows
        X, y = np.concatenate([X, dataset.X_val]), np.concatenate([y, dataset.y_val])
    # streamed: the workers read every row from the files; the driver's rows are the sample
    stream = worker_stream(dataset, world, refit=refit is not None)
    available = stream.total if stream is not None else len(X)
    classification = dataset.task == "classification"
    ledger = start_ledger()  # on this node: it outlives a lost worker node
    trees = model.trees_after(steps)
    config = {
        "family": family,
        "task": dataset.task,
        "n_features": dataset.n_features,
        "n_outputs": dataset.n_outputs,
        "params": model.params,
        "seed": spec.data.seed,
        "horizon": spec.search.max_epochs,
        "trees": trees,
        "threads": max(1, int(t.resources_per_worker.get("CPU", 1))),
        "classes": np.arange(dataset.n_outputs) if classification else None,
        # balanced weights from the driver's rows (all of them, or the sample's class shares)
        "class_weights": _class_weights(model, y),
        "use_gpu": t.use_gpu,
        "stream": stream,
        "ledger": ledger,
        # a refit has no rows left to validate on; otherwise stop when validation stalls
        "val": None if refit else ray.put((dataset.X_val, dataset.y_val)),
        "patience": max(10, trees // 10),
    }
    if classification and stream is None:
        config["classes"] = np.unique(y)
    trainer_cls = _trainer(family)
    trainer = trainer_cls(
        boosting_loop_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=world,
            use_gpu=t.use_gpu,
            resources_per_worker=dict(t.resources_per_worker) or None,
        ),
        run_config=RunConfig(name=EXPERIMENT, **_storage(_storage_path(spec, Path(run_dir)))),
        datasets={} if stream is not None else {"train": to_ray_dataset(X, y, world)},
    )
    source = "read from the files by the workers" if stream is not None else "through Ray Data"
    progress(
        "train",
        f"{family}: {trees} trees on {world} Ray Train worker(s) ({trainer_cls.__name__}), "
        f"{available:,} rows {source}"
        + ("" if refit else f", early stop after {config['patience']} rounds without gain"),
    )
    # the controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default)
    # before it sees them finish; Ray propagates the variable to the controller. Set for this
    # fit only: the process's environment is the user's.
    before = os.environ.get(HEALTH_CHECK_ENV)
    os.environ.setdefault(HEALTH_CHECK_ENV, "0.2")
    try:
        result = trainer.fit()
        shares = ray.get(ledger.summary.remote())["rows"]
    except WorkerGroupError as exc:
        raise TrainingError(
            f"{family} failed on the Ray Train workers: {_worker_failures(exc)}"
        ) from exc
    except ControllerError as exc:
        raise TrainingError(
            f"Ray Train's controller failed: {_root_cause(exc.controller_failure)}"
        ) from exc
    finally:
        if before is None:
            os.environ.pop(HEALTH_CHECK_ENV, None)
        ray.kill(ledger)
    out = result.return_value
    wall = time.time() - start
    # the last worker group's count from each rank (a restarted group reports again)
    per_rank = {r["rank"]: r["rows"] for r in shares}
    seen = sum(per_rank.values())

    model.model_ = out["estimator"]
    model.steps_done_ = steps
    val = None if refit else _val_score(model, dataset.X_val, dataset.y_val, metric)
    history = [
        {
            "epoch": steps,
            "train_loss": None,
            f"val_{metric}": val,
            "lr": None,
            "time_s": round(out["fit_s"], 3),
            "restarted": False,
        }
    ]
    best = out.get("best_round")
    info = {
        "workers": world,
        "use_gpu": t.use_gpu,
        "epochs": steps,
        "restarts": 0,
        "wall_s": round(wall, 2),
        "backend": "ray_train",
        "trainer": trainer_cls.__name__,
        "trees": trees,
        "data": "streamed" if stream is not None else "cached",
        "rows_seen": seen,  # every worker's rows, summed
        "rows_available": available,  # train (+ validation after a refit), all of the data
        "rows_per_worker": [per_rank[r] for r in sorted(per_rank)],
        "kept_epoch": steps,
        "best_round": best,
        "stopped_early": best is not None and best < trees,
        # fixed cost: Ray Train's worker group, the network between the workers, the shards
        "startup_s": round(wall - out["fit_s"] - out["read_s"], 2),
        "read_s": round(out["read_s"], 2),
        "fit_s": round(out["fit_s"], 2),
    }
    val_score = refit.val_score if refit else val
    return TrainedModel(model, family, model.params, info, history, None, val_score)


def _trainer(family: str) -> Any:
    if family == "lightgbm":
        from ray.train.v2.lightgbm.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer
    from ray.train.v2.xgboost.xgboost_trainer import XGBoostTrainer

    return XGBoostTrainer


def _class_weights(model: Any, y: np.ndarray) -> np.ndarray | None:
    """Per-class weights (index: the class) the family's ``class_weight: balanced`` gives the
    whole training set; each worker weighs its rows by them, not by its share's own balance."""
    weights = model._sample_weight(y)
    if weights is None:
        return None
    out = np.zeros(int(y.max()) + 1)
    out[y.astype(int)] = weights
    return out


__all__ = ["TRAINERS", "boosting_loop_per_worker", "fit_boosting"]
