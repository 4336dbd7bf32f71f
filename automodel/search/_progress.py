"""A Tune callback printing one line a finished trial, with the best so far."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from automodel.metrics import better


class TrialProgress(Callback):
    def __init__(self, progress: Any, total: int, metric: str):
        self.progress, self.total, self.metric = progress, total, metric
        self.done, self.best = 0, None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        r = trial.last_result or {}
        metric = self.metric
        if r.get(metric) is None:
            return
        value = r[metric]
        if self.best is None or better(metric, value, self.best):
            self.best = value
        fam = (trial.config.get("grid", trial.config)).get("family")
        self.progress("search", f"trial {self.done}/{self.total} {fam} {metric}={value:.4f} after "
                                f"{r.get('training_iteration')} it (best {self.best:.4f})")
