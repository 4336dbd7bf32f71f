"""Searchers by their spec names: Optuna TPE, GP and random behind Tune's OptunaSearch; grid.

Every searcher is a Tune ``Searcher`` whose whole state (the Optuna study and the sampler with its
random state) is saved with the experiment, so a resumed sweep goes on modelling the trials it
already ran instead of starting over at random.
"""

from __future__ import annotations

import warnings
from typing import Any

from automodel.search._space import DefineByRun
from automodel.spec import Spec

SEARCHERS = ("tpe", "gp", "random", "grid")


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


def make_searcher(
    spec: Spec, spaces: dict, k_range: tuple[int, int] | None, metric: str, mode: str
) -> Any:
    """The Tune searcher the spec asks for, capped at ``search.max_concurrent``; None for grid.

    GP gets the flat space (every family's parameters in every trial): a Gaussian process models
    only the parameters all trials share, so in a conditional space it would model the family and
    ``k`` alone and draw everything else at random.
    """
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    s = spec.search
    if s.searcher == "grid":
        return None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = make_sampler(s.searcher, seed=spec.data.seed, num_samples=s.num_samples)
    space = DefineByRun(spaces, k_range, flat=s.searcher == "gp")
    search = OptunaSearch(space=space, metric=metric, mode=mode, sampler=sampler)
    return ConcurrencyLimiter(search, max_concurrent=s.max_concurrent)


def optuna_study(searcher: Any) -> Any:
    """The Optuna study inside a searcher made by :func:`make_searcher` (None for grid)."""
    inner = getattr(searcher, "searcher", searcher)
    return getattr(inner, "_ot_study", None)
