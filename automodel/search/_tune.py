"""tune(): one Ray Tune sweep over families x hyperparameters x k, ASHA + a Bayesian searcher."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from automodel.data import Dataset
from automodel.errors import SearchError
from automodel.features import rank_features
from automodel.metrics import MODES
from automodel.search._result import SearchResult, leaderboard_from
from automodel.search._space import DefineByRun, decode, family_spaces, grid_configs  # noqa: F401
from automodel.search._trainable import run_trial
from automodel.spec import Spec

EXPERIMENT = "tune"


def _searcher(spec: Spec, spaces: dict, k_range: tuple[int, int] | None, metric: str, mode: str):
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    s, seed = spec.search, spec.data.seed
    if s.searcher == "grid":
        return None
    if s.searcher == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, s.num_samples // 3)))
    elif s.searcher == "gp":
        sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(2, min(10, s.num_samples // 3)))
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch(space=DefineByRun(spaces, k_range), metric=metric, mode=mode, sampler=sampler)
    return ConcurrencyLimiter(search, max_concurrent=s.max_concurrent)


def _scheduler(spec: Spec, metric: str, mode: str):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.search.scheduler == "fifo":
        return FIFOScheduler()  # needs no metric
    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=spec.search.max_epochs,
                         grace_period=min(spec.search.grace_period, spec.search.max_epochs), reduction_factor=3)


def _trainable(spec: Spec, dataset: Dataset, ranking: np.ndarray | None, metric: str):
    from ray import tune

    fn = tune.with_parameters(run_trial, dataset=dataset, ranking=ranking, metric=metric,
                              max_steps=spec.search.max_epochs, cv_folds=spec.search.cv_folds, seed=spec.data.seed)
    return tune.with_resources(fn, {"cpu": spec.search.cpus_per_trial, "gpu": spec.search.gpus_per_trial})


def _k_range(spec: Spec, n_features: int) -> tuple[int, int] | None:
    k = spec.features.k
    if isinstance(k, list):
        return (min(k[0], n_features), min(k[1], n_features))
    return None


def feature_ranking(spec: Spec, dataset: Dataset) -> np.ndarray | None:
    if spec.features.method == "none":
        return None
    return rank_features(dataset.X_train, dataset.y_train, dataset.task, seed=spec.data.seed)


def tune(spec: Spec, dataset: Dataset, run_dir: str | Path, *, resume: bool = False,
         callbacks: list | None = None) -> SearchResult:
    """Run (or resume) the sweep the spec describes; write ``leaderboard.csv`` into ``run_dir``.

    Raises:
        SearchError: when ``resume`` finds no sweep, or no trial produced a score.
    """
    from ray import tune as rt

    run_dir = Path(run_dir).resolve()
    metric = spec.metric_for(dataset.task)
    mode = MODES[metric]
    spaces = family_spaces(spec, dataset.task)
    ranking = feature_ranking(spec, dataset)
    k_range = _k_range(spec, dataset.n_features)
    trainable = _trainable(spec, dataset, ranking, metric)
    exp_path = run_dir / EXPERIMENT
    start = time.time()

    if resume:
        if not rt.Tuner.can_restore(str(exp_path)):
            raise SearchError(f"--resume: {run_dir} holds no sweep to resume (no {EXPERIMENT}/ experiment state)")
        tuner = rt.Tuner.restore(str(exp_path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        if exp_path.exists() and any(exp_path.iterdir()):
            raise SearchError(f"{exp_path} already holds a sweep; pass --resume to continue it or choose another --out")
        search_alg = _searcher(spec, spaces, k_range, metric, mode)
        param_space: dict[str, Any] = {}
        num_samples = spec.search.num_samples
        if search_alg is None:  # grid: every combination once
            k_values = list(range(k_range[0], k_range[1] + 1, max(1, (k_range[1] - k_range[0]) // 2))) if k_range else [
                spec.features.k if isinstance(spec.features.k, int) else None]
            param_space = {"grid": rt.grid_search(grid_configs(spaces, k_values))}
            num_samples = 1
        tuner = rt.Tuner(
            trainable,
            param_space=param_space,
            tune_config=rt.TuneConfig(
                search_alg=search_alg, scheduler=_scheduler(spec, metric, mode),
                num_samples=num_samples,
                max_concurrent_trials=spec.search.max_concurrent if search_alg is None else None,
                time_budget_s=spec.search.time_budget_s, reuse_actors=True,
                trial_dirname_creator=lambda t: t.trial_id,
            ),
            run_config=rt.RunConfig(name=EXPERIMENT, storage_path=str(run_dir), verbose=0,
                                    callbacks=callbacks or [], log_to_file=False),
        )
    results = tuner.fit()
    board = leaderboard_from(results, metric)
    board.to_csv(run_dir / "leaderboard.csv", index=False)
    done = board.dropna(subset=[metric])
    if done.empty:
        errors = [str(r.error).splitlines()[-1] for r in results if r.error is not None][:3]
        raise SearchError("no trial produced a score" + (f"; errors: {errors}" if errors else ""))
    best = done.iloc[0]
    return SearchResult(best["family"], json.loads(best["params"]), int(best["k"]) if best["k"] != "" else None,
                        float(best[metric]), metric, board, exp_path, time.time() - start)


__all__ = ["tune", "feature_ranking", "decode"]
