"""Trial schedulers by their spec names: ASHA on the family's fidelity, and FIFO.

Both snapshot the experiment (trials, searcher, scheduler) to the run directory the moment a
trial finishes, and wait for the write. Tune's own snapshots come at most every 10 s, so a sweep
killed between two of them would lose, and rerun, every trial finished in between.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from automodel.spec import Spec

SCHEDULERS = ("asha", "fifo")


def snapshot(tune_controller: Any) -> None:
    """Write the experiment state now and wait until it is on storage."""
    checkpoint = getattr(tune_controller, "checkpoint", None)
    if checkpoint is not None:  # the real controller; wrapped ones (on_trial_add) hide it
        checkpoint(force=True, wait=True)


class _SnapshotOnComplete:
    """Mixin: snapshot as each trial completes, before the driver's callbacks record it as done."""

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        snapshot(tune_controller)


class DurableASHA(_SnapshotOnComplete, ASHAScheduler):
    """ASHA (asynchronous successive halving) on ``fidelity``, snapshotting on completion.

    Tune does not restore a scheduler's state on resume; :meth:`replay` rebuilds the rungs from
    the journal, so trials after a resume are still cut against every trial before it.
    """

    def replay(self, results: dict[str, list[dict[str, Any]]]) -> None:
        """Record finished trials' results (as ``Journal.replay`` gives them) in the rungs."""
        bracket = self._brackets[0]  # ASHAScheduler's default: one bracket
        for trial_id, rows in results.items():
            stub = SimpleNamespace(trial_id=trial_id)
            for r in rows:
                if r.get(self._metric) is not None:
                    bracket.on_result(stub, r[self._time_attr], self._metric_op * r[self._metric])


class DurableFIFO(_SnapshotOnComplete, FIFOScheduler):
    """Every trial runs to its full fidelity; snapshots on completion."""


def make_scheduler(spec: Spec, metric: str, mode: str) -> Any:
    """The scheduler ``search.scheduler`` names.

    ASHA's rungs count each trial's ``fidelity``: epochs for torch families, growth steps of
    trees scaled to ``search.max_epochs`` (so forests and boosting are stopped early too, and
    compared with networks at the same share of their budget). The first rung is
    ``search.grace_period``.
    """
    s = spec.search
    if s.scheduler == "fifo":
        return DurableFIFO()  # needs no metric
    return DurableASHA(
        time_attr="fidelity",
        metric=metric,
        mode=mode,
        max_t=s.max_epochs,
        grace_period=min(s.grace_period, s.max_epochs),
        reduction_factor=3,
    )
