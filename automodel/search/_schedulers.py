"""Trial schedulers by their spec names: ASHA with rungs kept per family, and FIFO.

Why per family: model families learn at different speeds. On digits a forest is near its best
after one chunk of trees while an MLP after 2 of 20 epochs is still far from it, so one set of
rungs shared by all families stops every MLP at the first rung, however good it would have been.
:class:`FamilyASHA` keeps one ASHA (Tune's own, driven through its public methods) per family:
a trial is compared only with trials of its family at the same fidelity, so early stopping
removes the worse configurations of each family and never a family for being slower to start.
Which family deserves more trials is the searcher's call (TPE models the family as a parameter
on final scores), not the scheduler's.

Both choose the next trial to start among the trials not yet finished (:class:`Fifo`), not by
scanning every trial of the experiment as Tune's FIFO does at each step of its controller.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from automodel.search._space import decode
from automodel.spec import Spec

SCHEDULERS = ("asha", "fifo")


class Fifo(FIFOScheduler):
    """Tune's FIFO: the oldest pending trial starts next, else the oldest paused one.

    Tune's own looks for it by scanning every trial of the experiment, at each step of its
    controller (several a trial): in a 5,000-trial sweep that scan grew to a few percent of the
    driver's time by its end. This one keeps the trials not yet finished, in the order they were
    added, and forgets each once it has finished: a scan over at most the running and the waiting
    trials.
    """

    def __init__(self) -> None:
        super().__init__()
        self._unfinished: dict[str, Trial] = {}  # trial id -> trial, in the order added

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._unfinished.setdefault(trial.trial_id, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        paused = None
        for trial in list(self._unfinished.values()):
            if trial.is_finished():
                del self._unfinished[trial.trial_id]
            elif trial.status == Trial.PENDING:
                return trial
            elif paused is None and trial.status == Trial.PAUSED:
                paused = trial
        return paused


class FamilyASHA(Fifo):
    """Asynchronous successive halving on ``time_attr``, one set of rungs per model family."""

    def __init__(
        self,
        *,
        time_attr: str,
        metric: str,
        mode: str,
        max_t: int,
        grace_period: int,
        reduction_factor: float = 3,
    ):
        super().__init__()
        self._kw = dict(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
        )
        self._metric, self._mode = metric, mode
        self.by_family: dict[str, ASHAScheduler] = {}
        self._family_of: dict[str, str] = {}  # trial id -> family
        self.stopped: dict[str, int] = {}  # family -> trials stopped early

    def _asha(self, trial: Any) -> ASHAScheduler:
        family = self._family_of.get(trial.trial_id)
        if family is None:
            family = decode(trial.config)[0]
            self._family_of[trial.trial_id] = family
        if family not in self.by_family:
            self.by_family[family] = ASHAScheduler(**self._kw)
        return self.by_family[family]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode are fixed at construction

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        self._asha(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = self._asha(trial).on_trial_result(tune_controller, trial, result)
        if (
            action == TrialScheduler.STOP
            and result.get(self._kw["time_attr"], 0) < self._kw["max_t"]
        ):
            family = self._family_of[trial.trial_id]
            self.stopped[family] = self.stopped.get(family, 0) + 1
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._asha(trial).on_trial_complete(tune_controller, trial, result)
        self._family_of.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._asha(trial).on_trial_remove(tune_controller, trial)
        self._family_of.pop(trial.trial_id, None)

    def replay(self, finished: list[tuple[str, dict, list[dict]]]) -> None:
        """Fill the rungs with trials a killed sweep finished: ``(trial_id, config, results)``.

        Tune restores no scheduler state, and the resumed sweep runs only new trials, so without
        this they would be cut against an empty ladder.
        """
        for trial_id, config, results in finished:
            stub = SimpleNamespace(trial_id=trial_id, config=config)
            asha = self._asha(stub)
            asha.on_trial_add(None, stub)
            for r in results:
                asha.on_trial_result(None, stub, r)
            if results:
                asha.on_trial_complete(None, stub, results[-1])
            else:
                asha.on_trial_remove(None, stub)
            self._family_of.pop(trial_id, None)


def make_scheduler(spec: Spec, metric: str, mode: str) -> Any:
    """The scheduler ``search.scheduler`` names.

    ASHA's rungs count each trial's ``fidelity``: epochs for torch families, growth steps of
    trees scaled to ``search.max_epochs``. The first rung is ``search.grace_period``.
    """
    s = spec.search
    if s.scheduler == "fifo":
        return Fifo()
    return FamilyASHA(
        time_attr="fidelity",
        metric=metric,
        mode=mode,
        max_t=s.max_epochs,
        grace_period=min(s.grace_period, s.max_epochs),
        reduction_factor=3,
    )
