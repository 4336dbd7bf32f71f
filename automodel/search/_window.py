"""The history a sampler models, bounded: an in-memory Optuna study of the best and latest trials.

A suggestion from Optuna's TPE costs time linear in the trials its study holds (it splits them
into good and bad, recomputes the decomposed search space and the Parzen estimators from every
one, in Python); a Gaussian process costs cubic time. In one study of every trial, a 5,000-trial
sweep's suggestions grew from a few milliseconds to most of the sweep's time
(``benchmarks/RESULTS.md``, ``sweep_scale``). :class:`SamplerHistory` keeps the study the sampler
asks at most ``limit`` trials: up to that many it holds all of them, exactly as before; at the
limit it is rebuilt from the ``keep_best`` best trials and the ``keep_recent`` latest ones.

Why that keeps TPE's suggestions: TPE fits its "good" density to the best ``min(ceil(0.1 n), 25)``
trials; a rebuilt study holds at least 250 trials, among them the best 50 of the whole history,
so that density is the one the whole history gives; the "bad" density is fitted to a sample of
the rest (the latest, where the search is now) instead of all of it. The whole history stays in the sweep's journal (:mod:`._searchers`).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

HISTORY_LIMIT = 400  # trials the sampler's study holds before it is thinned
KEEP_BEST = 50  # ... to its best trials (TPE's good group is at most the best 25)
KEEP_RECENT = 200  # ... and its latest ones: 250 at least, so TPE's good group stays 25


class SamplerHistory:
    """The in-memory study a searcher asks, of at most ``limit`` trials (asked, told, enqueued).

    ``make_sampler(generation)`` makes the sampler of each rebuilt study: a fresh one, seeded on
    (a sampler keeps caches tied to the study it sampled for).
    """

    def __init__(
        self,
        make_sampler: Callable[[int], Any],
        direction: str,
        *,
        limit: int = HISTORY_LIMIT,
        keep_best: int = KEEP_BEST,
        keep_recent: int = KEEP_RECENT,
    ):
        if not 0 < keep_best + keep_recent < limit:
            raise ValueError(
                f"keep_best + keep_recent must be in (0, limit), but got {keep_best=}, "
                f"{keep_recent=}, {limit=}."
            )
        self._make_sampler = make_sampler
        self.direction = direction
        self.limit, self.keep_best = limit, keep_best
        self._best: list[tuple[float, int, Any]] = []  # min-heap: the worst kept trial on top
        self._recent: deque[tuple[int, Any]] = deque(maxlen=keep_recent)
        self._seq = itertools.count()  # the order trials were told in
        self.generation = 0  # times the study was rebuilt
        self.size = 0  # trials the current study holds
        self.study = self._new_study([])

    def _new_study(self, trials: list) -> Any:
        import optuna

        study = optuna.create_study(
            sampler=self._make_sampler(self.generation), direction=self.direction
        )
        study.add_trials(trials)
        self.size = len(trials)
        return study

    def restore(self, trials: Iterable[Any]) -> None:
        """Model the completed trials of a resumed sweep (oldest first) as if told in order."""
        trials = list(trials)
        for frozen in trials:
            self._remember(frozen)
        self.study = self._new_study(trials if len(trials) < self.limit else self.kept())

    def enqueue(self, params: dict[str, Any]) -> None:
        self.study.enqueue_trial(params)
        self.size += 1

    def ask(self) -> Any:
        """A new trial of the current study (thinned first when it is full)."""
        if self.size >= self.limit:
            self.generation += 1
            self.study = self._new_study(self.kept())
        self.size += 1
        return self.study.ask()

    def tell(self, trial: Any, value: float | None) -> Any:
        """Finish ``trial`` (failed when ``value`` is None); the FrozenTrial it became.

        A trial asked before the study was thinned finishes in the study it came from and is
        then added to the current one.
        """
        import optuna

        asked_in = trial.study
        if value is None:
            return asked_in.tell(trial, state=optuna.trial.TrialState.FAIL)
        frozen = asked_in.tell(trial, value)
        if asked_in is not self.study:
            self.study.add_trial(frozen)
            self.size += 1
        self._remember(frozen)
        return frozen

    def _remember(self, frozen: Any) -> None:
        seq = next(self._seq)
        key = frozen.value if self.direction == "maximize" else -frozen.value
        heapq.heappush(self._best, (key, seq, frozen))
        if len(self._best) > self.keep_best:
            heapq.heappop(self._best)
        self._recent.append((seq, frozen))

    def kept(self) -> list[Any]:
        """The best and the latest completed trials, in the order they were told."""
        by_seq = {seq: t for _, seq, t in self._best} | dict(self._recent)
        return [by_seq[s] for s in sorted(by_seq)]
