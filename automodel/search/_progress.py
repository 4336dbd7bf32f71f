"""A Tune callback printing one line a finished trial, with the best so far."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from automodel.metrics import better
from automodel.search._result import REPLAYED_TIME


class TrialProgress(Callback):
    """``trial 5/12 mlp accuracy=0.9537 after 6 it (best 0.9722)``, through a Progress printer.

    Counts from the trials Tune holds, so a resumed sweep goes on from where it was killed.
    """

    def __init__(self, progress: Any, total: int, metric: str):
        self.progress, self.total, self.metric = progress, total, metric
        self.best = None

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        if total_num_samples:  # a grid's size is its number of combinations, not search.num_samples
            self.total = total_num_samples

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        done = sum(1 for t in trials if t.status in ("TERMINATED", "ERROR") and t.last_result)
        if done < self.total:
            self.progress("search", f"stopped after {done} of {self.total} trials")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        done = 1 + sum(1 for t in trials if t is not trial and t.status in ("TERMINATED", "ERROR"))
        metric = self.metric
        if self.best is None:  # a resumed sweep: the best among trials finished before
            finished = [
                t.last_result.get(metric)
                for t in trials
                if t is not trial
                and t.status == "TERMINATED"
                and t.last_result
                and t.last_result.get(metric) is not None
            ]
            for v in finished:
                self.best = v if self.best is None or better(metric, v, self.best) else self.best
        r = trial.last_result or {}
        if r.get(metric) is None:
            return
        value = r[metric]
        if self.best is None or better(metric, value, self.best):
            self.best = value
        fam = (trial.config.get("grid", trial.config)).get("family")
        kept = " (finished before the restart)" if REPLAYED_TIME in r else ""
        self.progress(
            "search",
            f"trial {done}/{self.total} {fam} {metric}={value:.4f} after "
            f"{r.get('training_iteration')} it (best {self.best:.4f}){kept}",
        )
