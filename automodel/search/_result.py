"""SearchResult and the leaderboard written from a finished (or stopped) sweep."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automodel.metrics import MODES
from automodel.search._space import decode

COLUMNS = ["trial_id", "family", "iterations", "status", "k", "params", "time_s"]
REPLAYED_TIME = (
    "replayed_time"  # in a result replayed on resume: seconds the trial trained first time
)


@dataclass
class SearchResult:
    """What a sweep found: the winner, and every trial in ``leaderboard``."""

    family: str
    params: dict[str, Any]
    k: int | None
    score: float
    metric: str
    leaderboard: pd.DataFrame
    path: Path
    wall_s: float = 0.0
    history: dict[str, list] = field(default_factory=dict)


def trial_status(status: str, iterations: int, n_steps: int) -> str:
    """``completed``, ``stopped_early`` (fewer steps than its full fidelity), ``error`` or ``not_started``."""
    if status == "ERROR":
        return "error"
    if iterations == 0:
        return "not_started"
    if n_steps and iterations < n_steps:
        return "stopped_early"
    return "completed"


def leaderboard_from(trials: list, metric: str) -> pd.DataFrame:
    """One row a trial, best first: trial_id, family, <metric>, iterations, status, k, params, time_s."""
    rows = []
    for t in trials:
        cfg = t.config or {}
        if "family" not in cfg.get("grid", cfg):
            continue
        family, params, k = decode(cfg)
        m = t.last_result or {}
        iters = int(m.get("training_iteration", 0) or 0)
        rows.append(
            {
                "trial_id": t.trial_id,
                "family": family,
                metric: m.get(metric),
                "iterations": iters,
                "status": trial_status(t.status, iters, int(m.get("n_steps", 0) or 0)),
                "k": k if k is not None else "",
                "params": json.dumps(params, sort_keys=True, default=str),
                # a trial replayed on resume trained in the killed run; its time there is what counts
                "time_s": round(float(m.get(REPLAYED_TIME, m.get("time_total_s", 0.0)) or 0.0), 2),
            }
        )
    df = pd.DataFrame(rows, columns=[*COLUMNS[:2], metric, *COLUMNS[2:]])
    return df.sort_values(
        metric, ascending=MODES[metric] == "min", na_position="last", kind="stable"
    ).reset_index(drop=True)
