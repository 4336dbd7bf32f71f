"""tune(): one Ray Tune sweep over families x hyperparameters x k, ASHA + a Bayesian searcher.

The experiment lives in ``<run_dir>/tune``. A fresh sweep and a resumed one are the same call to
``ray.tune.run`` with freshly built searcher, scheduler and callbacks; on resume Tune loads the
trials and the searcher's saved state into them, and :mod:`._history` replays the trials that
had finished after Tune's last snapshot instead of training them again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from automodel.data import Dataset
from automodel.errors import ResourceError, SearchError
from automodel.features import rank_features
from automodel.metrics import MODES
from automodel.search._result import SearchResult, leaderboard_from
from automodel.search._searchers import make_searcher
from automodel.search._space import decode, family_spaces, grid_configs
from automodel.search._trainable import run_trial
from automodel.spec import Spec

EXPERIMENT = "tune"


def feature_ranking(spec: Spec, dataset: Dataset) -> np.ndarray | None:
    """Mutual information of each encoded column with the target; None without feature selection."""
    if spec.features.method == "none":
        return None
    return rank_features(dataset.X_train, dataset.y_train, dataset.task, seed=spec.data.seed)


def has_sweep(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a sweep to resume (a snapshot of its Tune experiment)."""
    return any((Path(run_dir) / EXPERIMENT).glob("experiment_state-*.json"))


def tune(
    spec: Spec,
    dataset: Dataset,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: list | None = None,
) -> SearchResult:
    """Run (or resume) the sweep the spec describes; write ``leaderboard.csv`` into ``run_dir``.

    Every reported result is appended to ``<run_dir>/trials.jsonl`` as it arrives.

    Raises:
        SearchError: when ``resume`` finds no sweep, a fresh sweep would overwrite one, the sweep
            was interrupted (Ctrl+C), or no trial produced a score.
        ResourceError: when one trial asks for more CPUs or GPUs than the local Ray has.
    """
    run_dir = Path(run_dir).resolve()
    exp_path = run_dir / EXPERIMENT
    metric = spec.metric_for(dataset.task)
    if resume and not has_sweep(run_dir):
        raise SearchError(
            f"--resume: {run_dir} holds no sweep to resume (no {EXPERIMENT}/experiment_state-*.json); "
            "run `automodel tune SPEC --out DIR` without --resume to start one"
        )
    if not resume and exp_path.exists() and any(exp_path.iterdir()):
        raise SearchError(
            f"{exp_path} already holds a sweep; pass --resume to continue it or choose another --out"
        )
    _check_trial_fits(spec)

    from automodel.search._history import Journal, TrialHistory, load_journal

    start = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    journal = load_journal(run_dir, exp_path) if resume else Journal()
    ranking = feature_ranking(spec, dataset)
    replay = journal.replay(metric, spec.search.max_epochs)
    trainable = _trainable(spec, dataset, ranking, metric, replay)
    history = TrialHistory(run_dir, exp_path, metric, journal)
    run_start = time.time()
    analysis = _run(
        spec,
        trainable,
        run_dir,
        metric,
        dataset.task,
        dataset.n_features,
        resume=resume,
        callbacks=[history, *(callbacks or [])],
        replay=replay,
    )

    board = leaderboard_from(analysis.trials, metric)
    expected = _expected_trials(spec, dataset.task, dataset.n_features)
    budget = spec.search.time_budget_s
    ended = history.finished | {t.trial_id for t in analysis.trials if t.status == "ERROR"}
    if len(ended) < expected and (budget is None or time.time() - run_start < budget):
        # Tune ended early without reaching its time budget: stopped by Ctrl+C (SIGINT). The trials
        # it stopped show as terminated; they are not finished and rerun on --resume.
        cut = ~board.trial_id.isin(ended) & board.status.isin(["completed", "stopped_early"])
        board.loc[cut, "status"] = "interrupted"
        board.to_csv(run_dir / "leaderboard.csv", index=False)
        raise SearchError(
            f"search interrupted after {len(ended)} of {expected} trials (leaderboard "
            f"so far: {run_dir / 'leaderboard.csv'}); continue it with "
            f"`automodel tune SPEC --out {run_dir} --resume`"
        )
    board.to_csv(run_dir / "leaderboard.csv", index=False)
    done = board.dropna(subset=[metric])
    if done.empty:
        errors = [_error_line(t) for t in analysis.trials if t.status == "ERROR"][:3]
        budget = (
            f" within search.time_budget_s={spec.search.time_budget_s:g}"
            if spec.search.time_budget_s
            else ""
        )
        raise SearchError(
            f"no trial produced a score{budget}" + (f"; errors: {errors}" if errors else "")
        )
    best = done.iloc[0]
    return SearchResult(
        best["family"],
        json.loads(best["params"]),
        int(best["k"]) if best["k"] != "" else None,
        float(best[metric]),
        metric,
        board,
        exp_path,
        time.time() - start,
    )


def _run(
    spec: Spec,
    trainable: Any,
    run_dir: Path,
    metric: str,
    task: str,
    n_features: int,
    *,
    resume: bool,
    callbacks: list,
    replay: dict | None = None,
) -> Any:
    """``ray.tune.run`` with automodel's settings; also what the overhead benchmark times."""
    from ray import tune as rt
    from ray.tune import ResumeConfig

    from automodel.search._schedulers import make_scheduler

    s = spec.search
    mode = MODES[metric]
    spaces = family_spaces(spec, task)
    k_range = _k_range(spec, n_features)
    search_alg = make_searcher(spec, spaces, k_range, metric, mode)
    config: dict[str, Any] = {}
    num_samples = s.num_samples
    if search_alg is None:  # grid: every combination once
        config = {"grid": rt.grid_search(grid_configs(spaces, _grid_k_values(spec, k_range)))}
        num_samples = 1
    scheduler = make_scheduler(spec, metric, mode)
    if replay and hasattr(scheduler, "replay"):
        scheduler.replay(replay)  # Tune restores no scheduler state: rebuild ASHA's rungs
    resume_config = (
        ResumeConfig(
            unfinished=ResumeConfig.ResumeType.RESUME, errored=ResumeConfig.ResumeType.RESUME
        )
        if resume
        else None
    )
    with _quiet_console(), warnings.catch_warnings():
        # A trial replayed on resume reports steps the Optuna study already holds; Optuna says so.
        warnings.filterwarnings("ignore", message="The reported value is ignored")
        # GP fits its model inside the define-by-run space function: slow there by design.
        warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space`")
        return rt.run(
            trainable,
            name=EXPERIMENT,
            storage_path=str(run_dir),
            config=config,
            num_samples=num_samples,
            search_alg=search_alg,
            scheduler=scheduler,
            max_concurrent_trials=s.max_concurrent if search_alg is None else None,
            time_budget_s=s.time_budget_s,
            reuse_actors=True,
            resume_config=resume_config,
            trial_dirname_creator=_trial_dirname,
            callbacks=callbacks,
            verbose=0,
            log_to_file=False,
            raise_on_failed_trial=False,
        )


def _expected_trials(spec: Spec, task: str, n_features: int) -> int:
    """Trials a sweep runs to its end: ``num_samples``, or every combination of a grid."""
    if spec.search.searcher != "grid":
        return spec.search.num_samples
    k_range = _k_range(spec, n_features)
    return len(grid_configs(family_spaces(spec, task), _grid_k_values(spec, k_range)))


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id


@contextlib.contextmanager
def _quiet_console() -> Iterator[None]:
    """Tune's console output off: our callbacks print one progress line a finished trial.

    With verbose=0 the new output engine still prints its "Configuration for experiment" box and
    "View detailed results here"; the legacy engine at verbose=0 prints nothing.
    """
    old = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    tune_logger = logging.getLogger("ray.tune.tune")
    tune_logger.addFilter(_no_tune_resume_hint)
    try:
        yield
    finally:
        tune_logger.removeFilter(_no_tune_resume_hint)
        if old is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = old


def _no_tune_resume_hint(record: logging.LogRecord) -> bool:
    """Drop Tune's "Resume experiment with: tune.run(..., resume=True)": ours names --resume."""
    return "Resume experiment with" not in record.getMessage()


def _trainable(
    spec: Spec,
    dataset: Dataset,
    ranking: np.ndarray | None,
    metric: str,
    replay: dict[str, list[dict]],
) -> Callable:
    from ray import tune as rt

    s = spec.search
    fn = rt.with_parameters(
        run_trial,
        dataset=dataset,
        ranking=ranking,
        metric=metric,
        max_steps=s.max_epochs,
        cv_folds=s.cv_folds,
        seed=spec.data.seed,
        replay=replay,
    )
    # Fractional CPUs let small trials pack several to a core; a GPU share packs them on a GPU.
    return rt.with_resources(fn, {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial})


def _k_range(spec: Spec, n_features: int) -> tuple[int, int] | None:
    k = spec.features.k
    if isinstance(k, list):
        return (min(k[0], n_features), min(k[1], n_features))
    return None


def _grid_k_values(spec: Spec, k_range: tuple[int, int] | None) -> list[int | None]:
    """Grid over k: both ends and the middle of a searched range, else the spec's fixed k."""
    if k_range is None:
        return [spec.features.k if isinstance(spec.features.k, int) else None]
    low, high = k_range
    return sorted({low, (low + high) // 2, high})


def _check_trial_fits(spec: Spec) -> None:
    """On the embedded local Ray, a trial that can never be placed is an error, not a hang."""
    import ray

    if spec.runtime.address is not None or not ray.is_initialized():
        return  # a cluster may scale up to fit; the cluster preflight judges that
    total = ray.cluster_resources()
    s = spec.search
    for key, want, have in (
        ("search.cpus_per_trial", s.cpus_per_trial, total.get("CPU", 0)),
        ("search.gpus_per_trial", s.gpus_per_trial, total.get("GPU", 0)),
    ):
        if want > have:
            unit = "CPU" if key.endswith("cpus_per_trial") else "GPU"
            raise ResourceError(
                f"{key}: a trial asks for {want:g} {unit}s but the local Ray has {have:g}; "
                f"lower {key} or run on a cluster (runtime.address)"
            )


def _error_line(trial: Any) -> str:
    """The last line of a failed trial's traceback (the exception itself)."""
    err = trial.get_error()
    lines = str(err).strip().splitlines() if err is not None else []
    return lines[-1] if lines else f"trial {trial.trial_id} failed"


__all__ = ["decode", "feature_ranking", "has_sweep", "tune"]
