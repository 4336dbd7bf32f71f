"""A Tune callback printing one line a finished trial, with the best so far."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from automodel.metrics import better


class TrialProgress(Callback):
    """``trial 5/12 mlp accuracy=0.9537 after 6 it (best 0.9722)``, through a Progress printer.

    A resumed sweep counts on from the trials finished before the restart (:meth:`resume_from`).
    """

    def __init__(self, progress: Any, total: int | None, metric: str):
        # total None: the sweep runs until its time budget is used, so there is no "of N"
        self.progress, self.total, self.metric = progress, total, metric
        self.best = None
        self.before = 0  # trials a resumed sweep had finished before the restart
        self.ended = 0  # trials of this session that ended (a count: Tune's list grows per trial)

    def resume_from(self, scores: list[float]) -> None:
        """Count the trials finished before a restart, and their best score."""
        self.before = len(scores)
        for v in scores:
            self.best = v if self.best is None or better(self.metric, v, self.best) else self.best

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        # a grid's size is its number of combinations, not search.num_samples
        if total_num_samples and self.total is not None:
            self.total = self.before + total_num_samples

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        scored = [t for t in trials if (t.last_result or {}).get(self.metric) is not None]
        done = self.before + len(scored)
        # stopped by the sweep's budget before a first score, most never given a CPU at all
        late = sum(1 for t in trials if t.status != "ERROR" and t not in scored)
        said = f"; {late} could not start or score before it ended (not_started)" if late else ""
        if self.total is None:
            self.progress("search", f"budget used after {done} scored trials{said}")
        elif done < self.total:
            self.progress("search", f"stopped after {done} of {self.total} trials{said}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended += 1

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:  # Tune's error file (written when the attempt failed); a line without it otherwise
            err = trial.get_error()
        except Exception:
            err = None
        lines = [line for line in str(err or "").strip().splitlines() if line.strip()]
        fam = (trial.config.get("grid", trial.config)).get("family")
        why = f" ({lines[-1].strip()[:160]})" if lines else ""
        self.progress(
            "search",
            f"trial {trial.trial_id} {fam} was lost{why}; running it again from its start "
            f"(retry {trial.num_failures})",
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended += 1
        done = self.before + self.ended
        metric = self.metric
        r = trial.last_result or {}
        if r.get(metric) is None:
            return
        value = r[metric]
        if self.best is None or better(metric, value, self.best):
            self.best = value
        fam = (trial.config.get("grid", trial.config)).get("family")
        of = "" if self.total is None else f"/{self.total}"
        self.progress(
            "search",
            f"trial {done}{of} {fam} {metric}={value:.4f} after "
            f"{r.get('training_iteration')} it (best {self.best:.4f})",
        )
