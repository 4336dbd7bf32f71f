"""The sweep's journal: ``trials.jsonl`` (every reported result) and the trials known finished.

``<run_dir>/trials.jsonl`` has one JSON line per reported result, in arrival order::

    {"trial_id": "3bc32143", "family": "mlp", "k": 32, "iteration": 4, "accuracy": 0.95,
     "loss": 0.21, "time": 1.8}

(``time``: seconds the trial has trained so far; ``k`` null when features are not searched.)
Learning curves are drawn from it, so a trial's last line is also when it finished.

``<run_dir>/tune/finished.jsonl`` records each trial once it has finished
(``{"trial_id", "config", "iterations", "n_steps", "failures"}``; ``failures``: attempts lost
before the one that finished, each retried from its start). Together with the searcher's Optuna
journal they are the whole state of a sweep: a resumed sweep never trains a finished trial again
(its rows come from here), and runs new trials for the rest of ``search.num_samples``; lines of
trials that had not finished are dropped, and so are the lines of a lost attempt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from automodel.search._space import decode

HISTORY = "trials.jsonl"
FINISHED = "finished.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file; a torn last line (a killed writer) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@dataclass
class Journal:
    """What a killed sweep left: finished trials (``finished.jsonl`` rows) and their results."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rungs(self, metric: str, max_steps: int) -> list[tuple[str, dict, list[dict]]]:
        """Finished trials as ASHA saw them: ``(trial_id, config, [{metric, fidelity}, ...])``."""
        from automodel.search._trainable import fidelity

        out = []
        for tid, done in self.finished.items():
            rows = [
                {
                    metric: r[metric],
                    "fidelity": fidelity(r["iteration"], done["n_steps"], max_steps),
                }
                for r in self.results.get(tid, [])
                if r.get(metric) is not None
            ]
            out.append((tid, done["config"], rows))
        return out


def load_journal(run_dir: Path, exp_path: Path) -> Journal:
    """Read the journal and rewrite ``trials.jsonl`` without the lines of unfinished trials."""
    finished = {r["trial_id"]: r for r in read_jsonl(exp_path / FINISHED) if "config" in r}
    lines = [
        r
        for r in read_jsonl(run_dir / HISTORY)
        if r.get("trial_id") in finished
        and r.get("iteration", 0) <= finished[r["trial_id"]]["iterations"]
    ]
    results: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(lines, key=lambda r: r["iteration"]):
        results.setdefault(r["trial_id"], []).append(r)
    # A finished trial whose lines are incomplete has no trustworthy score: it does not count.
    journal = Journal(
        {t: d for t, d in finished.items() if len(results.get(t, [])) == d["iterations"]}
    )
    journal.results = {t: rows for t, rows in results.items() if t in journal.finished}
    _rewrite(run_dir / HISTORY, [r for r in lines if r["trial_id"] in journal.finished])
    _rewrite(exp_path / FINISHED, list(journal.finished.values()))
    return journal


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` atomically (a torn last line must not swallow the next one appended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


class TrialHistory(Callback):
    """Appends every result to ``trials.jsonl`` and every finished trial to ``finished.jsonl``.

    Runs in the driver. Each line is flushed as it is written, so a killed sweep keeps all of them
    (but perhaps a torn last one, which readers skip). ``trials`` holds Tune's trials once the
    experiment ends.
    """

    def __init__(self, run_dir: Path, exp_path: Path, metric: str, journal: Journal | None = None):
        self.history_path = Path(run_dir) / HISTORY
        self.finished_path = Path(exp_path) / FINISHED
        self.metric = metric
        self.finished = set((journal or Journal()).finished)
        self.trials: list = []

    def _append(self, path: Path, row: dict[str, Any]) -> None:
        with open(path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if self.metric not in result:
            return
        it = int(result.get("training_iteration", 0))
        family, _, k = decode(trial.config)
        loss = result.get("loss")
        self._append(
            self.history_path,
            {
                "trial_id": trial.trial_id,
                "family": family,
                "k": k,
                "iteration": it,
                self.metric: result[self.metric],
                "loss": None if loss is None else float(loss),
                "time": round(float(result.get("time_total_s", 0.0)), 4),
            },
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.finished:
            return
        r = trial.last_result or {}
        self.finished.add(trial.trial_id)
        self.finished_path.parent.mkdir(parents=True, exist_ok=True)
        self._append(
            self.finished_path,
            {
                "trial_id": trial.trial_id,
                "config": trial.config,
                "iterations": int(r.get("training_iteration", 0)),
                "n_steps": int(r.get("n_steps", 0) or 0),
                "failures": int(trial.num_failures),  # attempts lost before this one
            },
        )

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial whose actor died (its node lost, or it raised) runs again from its start: the
        lines of the attempt that died are dropped, so the journal holds one attempt a trial."""
        rows = read_jsonl(self.history_path)
        _rewrite(self.history_path, [r for r in rows if r.get("trial_id") != trial.trial_id])

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.trials = list(trials)
