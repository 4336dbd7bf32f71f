"""Searchers by their spec names: Optuna TPE, GP and random behind one Tune ``Searcher``; grid.

:class:`OptunaSearcher` asks an in-memory Optuna study through Optuna's public ask/tell API, of
at most a thousand trials (:mod:`._window`: a sampler's cost grows with the trials it models),
and records every finished trial in an Optuna journal file (``<run_dir>/tune/optuna.jsonl``,
one JSON line a finished trial, appended as it finishes). A resumed sweep reopens that journal
and models its trials again, so the sampler goes on from them instead of starting over at
random; nothing of Tune's pickled state is read back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ray.tune.search import ConcurrencyLimiter, Searcher

from automodel.search._families import cheapest_first
from automodel.search._space import DefineByRun, default_params
from automodel.search._window import SamplerHistory
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
    """A Tune searcher over a define-by-run space: the sampler asks ``history``'s bounded study,
    and each finished trial is added to ``record``, the journalled study a resume reads.

    Trials the record holds as running when it is opened (a journal written before finished
    trials alone were recorded) are told failed, so no sampler waits on them.
    """

    def __init__(
        self, space: DefineByRun, history: SamplerHistory, record: Any, metric: str, mode: str
    ):
        super().__init__(metric=metric, mode=mode)
        import optuna

        self.space, self.history, self.study = space, history, record
        self._live: dict[str, Any] = {}  # Tune trial id -> Optuna trial
        for t in record.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            record.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self.history.ask()
        trial.set_user_attr(TUNE_TRIAL_ATTR, trial_id)
        constants = self.space(trial)
        self._live[trial_id] = trial
        return {**trial.params, **constants}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        value = None if (error or not result) else result.get(self.metric)
        frozen = self.history.tell(trial, None if value is None else float(value))
        # one journal line a finished trial, flushed to disk: all a resumed sweep needs of it
        self.study.add_trial(frozen)

    # Every finished trial is on disk in the record: Tune's own snapshot is not needed.
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
    record = open_study(study_path, optuna.samplers.RandomSampler(), mode)
    recorded = record.get_trials(deepcopy=False)
    # resumed: a sampler seeded afresh would redraw the first run's random trials
    seed = spec.data.seed + len(recorded)
    history = SamplerHistory(
        lambda generation: make_sampler(
            s.searcher, seed=seed + generation, num_samples=s.num_samples
        ),
        "maximize" if mode == "max" else "minimize",
    )
    history.restore(t for t in recorded if t.state == optuna.trial.TrialState.COMPLETE)
    if not recorded and s.searcher in ("tpe", "gp"):
        # each family's defaults first, cheapest family first: every family gets one sound
        # configuration early, and a short budget meets a score soon
        for family in cheapest_first(spaces)[: s.num_samples]:
            history.enqueue(default_params(family, spaces[family]))
    space = DefineByRun(spaces, k_range, flat=s.searcher == "gp")
    return ConcurrencyLimiter(
        OptunaSearcher(space, history, record, metric, mode), max_concurrent=s.max_concurrent
    )


def optuna_study(searcher: Any) -> Any:
    """The journalled study of a searcher made by :func:`make_searcher` (None for grid)."""
    inner = getattr(searcher, "searcher", searcher)
    return getattr(inner, "study", None)
