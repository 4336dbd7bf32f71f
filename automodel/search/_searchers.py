"""Searchers by their spec names: Optuna TPE, GP and random behind one Tune ``Searcher``; grid.

:class:`OptunaSearcher` drives an Optuna study through Optuna's public ask/tell API and keeps the
study in an Optuna journal file (``<run_dir>/tune/optuna.jsonl``, one JSON line per operation,
written as it happens). A resumed sweep reopens the same study, so the sampler goes on modelling
every trial already told instead of starting over at random; nothing of Tune's pickled state is
read back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ray.tune.search import ConcurrencyLimiter, Searcher

from automodel.search._families import cheapest_first
from automodel.search._space import DefineByRun, default_params
from automodel.spec import Spec

SEARCHERS = ("tpe", "gp", "random", "grid")
STUDY_FILE = "optuna.jsonl"
TUNE_TRIAL_ATTR = "tune_trial_id"  # the Optuna trial's user attribute naming its Tune trial


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE/GP model the results: a third of the budget, 2 to 10."""
    return max(2, min(10, num_samples // 3))


def make_sampler(name: str, *, seed: int, num_samples: int) -> Any:
    """The Optuna sampler behind searcher ``name`` (``tpe``, ``gp`` or ``random``)."""
    import optuna

    if name == "tpe":
        # group=True splits the conditional space by family, so each family's parameters are
        # modelled jointly on that family's trials instead of falling back to independent sampling.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=startup_trials(num_samples),
                multivariate=True,
                group=True,
            )
    if name == "gp":
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=startup_trials(num_samples), warn_independent_sampling=False
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown searcher {name!r}; valid: {', '.join(SEARCHERS)}")


def open_study(path: Path, sampler: Any, mode: str) -> Any:
    """The study journalled at ``path`` (created when absent).

    A SIGKILL can leave a torn last line and the journal's lock behind; both are cleared first, as
    no sweep can be writing while one is being opened.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
    Path(str(path) + ".lock").unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    direction = "maximize" if mode == "max" else "minimize"
    return optuna.create_study(
        storage=storage,
        sampler=sampler,
        direction=direction,
        study_name="sweep",
        load_if_exists=True,
    )


class OptunaSearcher(Searcher):
    """A Tune searcher over a define-by-run space, asking and telling an Optuna study.

    Trials the study holds as running when it is opened belong to a killed sweep (they never
    reported a final score); they are told failed, so the sampler does not wait on them.
    """

    def __init__(self, space: DefineByRun, study: Any, metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        import optuna

        self.space = space
        self.study = study
        self._live: dict[str, Any] = {}  # Tune trial id -> Optuna trial
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self.study.ask()
        trial.set_user_attr(TUNE_TRIAL_ATTR, trial_id)
        constants = self.space(trial)
        self._live[trial_id] = trial
        return {**trial.params, **constants}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        import optuna

        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        value = None if (error or not result) else result.get(self.metric)
        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, float(value))

    # The study is on disk after every ask and tell: Tune's own snapshot of it is not needed.
    def save(self, checkpoint_path: str) -> None:
        return None

    def restore(self, checkpoint_path: str) -> None:
        return None


def make_searcher(
    spec: Spec,
    spaces: dict,
    k_range: tuple[int, int] | None,
    metric: str,
    mode: str,
    study_path: Path,
) -> Any:
    """The Tune searcher the spec asks for, capped at ``search.max_concurrent``; None for grid.

    GP gets the flat space (every family's parameters in every trial): a Gaussian process models
    only the parameters all trials share, so in a conditional space it would model the family and
    ``k`` alone and draw everything else at random.
    """
    import optuna

    s = spec.search
    if s.searcher == "grid":
        return None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = make_sampler(s.searcher, seed=spec.data.seed, num_samples=s.num_samples)
    study = open_study(study_path, sampler, mode)
    if study.trials:  # resumed: a sampler seeded afresh would redraw the first run's random trials
        seed = spec.data.seed + len(study.trials)
        study.sampler = make_sampler(s.searcher, seed=seed, num_samples=s.num_samples)
    elif s.searcher in ("tpe", "gp"):
        # each family's defaults first, cheapest family first: every family gets one sound
        # configuration early, and a short budget meets a score soon
        for family in cheapest_first(spaces)[: s.num_samples]:
            study.enqueue_trial(default_params(family, spaces[family]))
    space = DefineByRun(spaces, k_range, flat=s.searcher == "gp")
    return ConcurrencyLimiter(
        OptunaSearcher(space, study, metric, mode), max_concurrent=s.max_concurrent
    )


def optuna_study(searcher: Any) -> Any:
    """The Optuna study inside a searcher made by :func:`make_searcher` (None for grid)."""
    inner = getattr(searcher, "searcher", searcher)
    return getattr(inner, "study", None)
