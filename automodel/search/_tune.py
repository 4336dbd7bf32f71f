"""tune(): one Ray Tune sweep over families x hyperparameters x k, ASHA + a Bayesian searcher.

The experiment lives in ``<run_dir>/tune``; it runs through Tune's public ``Tuner``. The sweep's
own state is JSON written as it happens: ``trials.jsonl`` and ``tune/finished.jsonl``
(:mod:`._history`) and the searcher's Optuna journal ``tune/optuna.jsonl``
(:mod:`._searchers`). A resumed sweep reads those, never Tune's pickled experiment state: the
trials finished before the restart keep their rows and fill the rungs again, the searcher goes on
from its study, and a fresh ``Tuner`` runs the trials still missing from ``search.num_samples``.
"""

from __future__ import annotations

import contextlib
import io
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
from automodel.search._entry import run_trial
from automodel.search._families import cheapest_first, default_families, with_families
from automodel.search._result import SearchResult, leaderboard_from
from automodel.search._searchers import STUDY_FILE, make_searcher
from automodel.search._space import decode, family_spaces, grid_configs, is_imbalanced
from automodel.spec import Spec

EXPERIMENT = "tune"
# Seconds a sweep needs at least: Ray Tune's start and a trial actor's (2-4 s on two cores).
MIN_SWEEP_S = 3.0
SWEEP_FILE = "sweep.json"  # written when a sweep starts: what --resume looks for
# Tune snapshots its experiment state (every trial so far, as JSON) every 10 s or, as it grows, so
# that snapshots take ~5% of the driver ("auto"): a cost that grows with the sweep. A resumed sweep
# never reads it (it reads the journals), so it is taken every 5 minutes, unless the user set it.
SNAPSHOT_ENV, SNAPSHOT_S = "TUNE_GLOBAL_CHECKPOINT_S", "300"
# A trial whose actor dies (its node lost, its process killed) runs again from its start, this
# many times, so a sweep that loses a node still ends with search.num_samples trials. Ray Tune
# cannot tell a lost node from a trial that raised: such a trial is also tried this many more times.
TRIAL_RETRIES = 2


def feature_ranking(spec: Spec, dataset: Dataset) -> np.ndarray | None:
    """Mutual information of each encoded column with the target; None without feature selection."""
    if spec.features.method == "none":
        return None
    return rank_features(dataset.X_train, dataset.y_train, dataset.task, seed=spec.data.seed)


def has_sweep(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a sweep to resume."""
    return (Path(run_dir) / EXPERIMENT / SWEEP_FILE).is_file()


def tune(
    spec: Spec,
    dataset: Dataset,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: list | None = None,
    trial_time_s: float | None = None,
) -> SearchResult:
    """Run (or resume) the sweep the spec describes; write ``leaderboard.csv`` into ``run_dir``.

    Every reported result is appended to ``<run_dir>/trials.jsonl`` as it arrives.
    ``trial_time_s`` stops any one trial after that many seconds (a run's time budget keeps the
    final fit, which costs about what the winning trial did, within what the sweep leaves).

    Raises:
        SearchError: when ``resume`` finds no sweep, a fresh sweep would overwrite one, the sweep
            was interrupted (Ctrl+C), or no trial produced a score.
        ResourceError: when one trial asks for more CPUs or GPUs than the local Ray has.
    """
    run_dir = Path(run_dir).resolve()
    exp_path = run_dir / EXPERIMENT
    metric = spec.metric_for(dataset.task)
    families_from = "search.families"
    if spec.search.families is None:
        families_from = default_families(dataset)[1]
        spec = with_families(spec, dataset)
    if resume and not has_sweep(run_dir):
        raise SearchError(
            f"--resume: {run_dir} holds no sweep to resume (no {EXPERIMENT}/{SWEEP_FILE}); "
            "run `automodel tune SPEC --out DIR` without --resume to start one"
        )
    if not resume and exp_path.exists() and any(exp_path.iterdir()):
        raise SearchError(
            f"{exp_path} already holds a sweep; pass --resume to continue it or choose another --out"
        )
    _check_trial_fits(spec)

    from automodel.search._history import Journal, TrialHistory, load_journal

    start = time.time()
    exp_path.mkdir(parents=True, exist_ok=True)
    if not resume:
        sweep = {"metric": metric, "families": spec.search.families, "families_from": families_from}
        (exp_path / SWEEP_FILE).write_text(json.dumps(sweep))
    journal = load_journal(run_dir, exp_path) if resume else Journal()
    ranking = feature_ranking(spec, dataset)
    trainable = _trainable(spec, dataset, ranking, metric)
    history = TrialHistory(run_dir, exp_path, metric, journal)
    before = leaderboard_from([], metric, journal)
    for cb in callbacks or []:
        if hasattr(cb, "resume_from"):
            cb.resume_from(before[metric].dropna().tolist())
    expected = _expected_trials(spec, dataset.task, dataset.n_features)
    run_start = time.time()
    # A budget shorter than Ray Tune takes to start a trial's actor would end with no score
    # anyway, seconds later: the cheapest family is fitted here at once instead (_fall_back).
    too_short = (spec.search.time_budget_s or MIN_SWEEP_S) < MIN_SWEEP_S and not resume
    if len(journal.finished) < expected and not too_short:
        _run(
            spec,
            trainable,
            run_dir,
            metric,
            dataset.task,
            dataset.n_features,
            callbacks=[history, *(callbacks or [])],
            journal=journal,
            imbalanced=_imbalanced(spec, dataset),
            trial_time_s=trial_time_s,
        )

    board = leaderboard_from(history.trials, metric, journal)
    board["rows_seen"] = len(
        dataset.X_train
    )  # training rows each trial saw (search.sample_rows caps it)
    budget = spec.search.time_budget_s
    ended = history.finished | {t.trial_id for t in history.trials if t.status == "ERROR"}
    if (
        len(ended) < expected
        and not too_short
        and (budget is None or time.time() - run_start < budget)
    ):
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
    done = board.dropna(subset=[metric])
    if done.empty and budget is not None and not any(t.status == "ERROR" for t in history.trials):
        board = _fall_back(spec, dataset, metric, board)
        done = board.dropna(subset=[metric])
    board.to_csv(run_dir / "leaderboard.csv", index=False)
    if done.empty:
        errors = [_error_line(t) for t in history.trials if t.status == "ERROR"][:3]
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
        families=list(spec.search.families),
        families_from=families_from,
    )


def _run(
    spec: Spec,
    trainable: Any,
    run_dir: Path,
    metric: str,
    task: str,
    n_features: int,
    *,
    callbacks: list,
    journal: Any = None,
    imbalanced: bool = False,
    trial_time_s: float | None = None,
) -> Any:
    """A ``Tuner`` with automodel's settings, fitted; also what the overhead benchmark times.

    ``journal`` (a resumed sweep's) names the trials already finished: they fill the rungs, and
    only the rest of ``search.num_samples`` (or of the grid) is run.
    """
    from ray import tune as rt

    from automodel.search._schedulers import make_scheduler

    s = spec.search
    mode = MODES[metric]
    spaces = family_spaces(spec, task, imbalanced=imbalanced)
    k_range = _k_range(spec, n_features)
    finished = journal.finished if journal is not None else {}
    search_alg = make_searcher(
        spec, spaces, k_range, metric, mode, run_dir / EXPERIMENT / STUDY_FILE
    )
    param_space: dict[str, Any] = {}
    num_samples = s.num_samples - len(finished)
    if search_alg is None:  # grid: every combination not yet finished, once
        done = {_key(d["config"].get("grid", d["config"])) for d in finished.values()}
        todo = [
            c for c in grid_configs(spaces, _grid_k_values(spec, k_range)) if _key(c) not in done
        ]
        param_space = {"grid": rt.grid_search(todo)}
        num_samples = 1
    scheduler = make_scheduler(spec, metric, mode)
    if journal is not None and hasattr(scheduler, "replay"):
        scheduler.replay(journal.rungs(metric, s.max_epochs))
    tuner = rt.Tuner(
        trainable,
        param_space=param_space,
        tune_config=rt.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=s.max_concurrent if search_alg is None else None,
            time_budget_s=s.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=rt.RunConfig(
            name=EXPERIMENT,
            storage_path=str(run_dir),
            callbacks=callbacks,
            stop={"time_total_s": trial_time_s} if trial_time_s else None,
            verbose=0,
            log_to_file=False,
            failure_config=rt.FailureConfig(max_failures=TRIAL_RETRIES),
        ),
    )
    from automodel.cluster._compat import trial_actors_without_runtime_env
    from automodel.cluster._runtime import started_local_ray

    own_env = (
        trial_actors_without_runtime_env() if started_local_ray() else contextlib.nullcontext()
    )
    with (
        _quiet_console(),
        _env_default(SNAPSHOT_ENV, SNAPSHOT_S),
        warnings.catch_warnings(),
        own_env,
    ):
        # GP fits its model inside the define-by-run space function: slow there by design.
        warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space`")
        return tuner.fit()


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _imbalanced(spec: Spec, dataset: Dataset) -> bool:
    """Search class weights: a classification target with a rare class, and not a grid (a grid
    runs exactly the combinations the spec lists)."""
    if dataset.task != "classification" or spec.search.searcher == "grid":
        return False
    return is_imbalanced(dataset.y_train, dataset.n_outputs)


def _fall_back(spec: Spec, dataset: Dataset, metric: str, board: Any) -> Any:
    """The budget ended before any trial reported: the cheapest searched family, at its defaults.

    A sweep with a time budget always ends with a model, as FLAML's does: the cheapest family the
    spec searches is fitted here with its default parameters on all features, scored on
    validation, and listed with status ``fallback``.
    """
    import pandas as pd

    from automodel.search._result import _row
    from automodel.search._trainable import fit_defaults

    family = cheapest_first(spec.search.families or [])[0]
    start = time.time()
    score, steps = fit_defaults(
        family,
        dataset=dataset,
        metric=metric,
        max_steps=spec.search.max_epochs,
        seed=spec.data.seed,
        train=spec.train,
    )
    took = time.time() - start
    warnings.warn(
        f"search.time_budget_s={spec.search.time_budget_s:g} ended before any trial reported a "
        f"score; fell back to {family} with its default parameters ({metric} {score:.4f} on "
        f"validation, fitted in {took:.1f}s in this process). A longer budget lets the sweep search.",
        stacklevel=2,
    )
    row = _row("fallback", {"family": family}, metric, score, steps, "fallback", took, "cpu")
    row["rows_seen"] = len(dataset.X_train)
    return pd.concat([board, pd.DataFrame([row])], ignore_index=True)


def _expected_trials(spec: Spec, task: str, n_features: int) -> int:
    """Trials a sweep runs to its end: ``num_samples``, or every combination of a grid."""
    if spec.search.searcher != "grid":
        return spec.search.num_samples
    k_range = _k_range(spec, n_features)
    return len(grid_configs(family_spaces(spec, task), _grid_k_values(spec, k_range)))


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id


@contextlib.contextmanager
def _env_default(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` while the sweep runs (Tune reads it then), unless already set."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


@contextlib.contextmanager
def _quiet_console() -> Iterator[None]:
    """Tune's console output off: our callbacks print one progress line a finished trial.

    At verbose=0 Tune's output engine still prints its "Configuration for experiment" box and
    "View detailed results here" to stdout, so the driver's stdout is muted while the sweep runs
    (our progress goes to stderr); Tune's resume hint is dropped, ours names ``--resume``.
    """
    tune_logger = logging.getLogger("ray.tune.tune")
    tune_logger.addFilter(_no_tune_resume_hint)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tune_logger.removeFilter(_no_tune_resume_hint)


def _no_tune_resume_hint(record: logging.LogRecord) -> bool:
    """Drop Tune's "Resume experiment with: tune.run(..., resume=True)": ours names --resume."""
    return "Resume experiment with" not in record.getMessage()


def _trainable(
    spec: Spec,
    dataset: Dataset,
    ranking: np.ndarray | None,
    metric: str,
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
        train=spec.train,  # torch trials train with the final fit's recipe settings
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
