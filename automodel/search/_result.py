"""SearchResult and the leaderboard written from a finished (or stopped) sweep."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automodel.metrics import MODES
from automodel.search._space import decode


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


def leaderboard_from(results: Any, metric: str) -> pd.DataFrame:
    """One row a trial, best first: trial_id, family, <metric>, iterations, status, k, params."""
    rows = []
    for r in results:
        cfg = r.config or {}
        if "family" not in cfg.get("grid", cfg):
            continue
        family, params, k = decode(cfg)
        m = r.metrics or {}
        iters = int(m.get("training_iteration", 0) or 0)
        n_steps = int(m.get("n_steps", 0) or 0)
        if r.error is not None:
            status = "error"
        elif iters == 0:
            status = "not_started"
        elif n_steps and iters < n_steps:
            status = "stopped_early"
        else:
            status = "completed"
        rows.append({
            "trial_id": m.get("trial_id") or Path(str(r.path)).name,
            "family": family,
            metric: m.get(metric),
            "iterations": iters,
            "status": status,
            "k": k if k is not None else "",
            "params": json.dumps(params, sort_keys=True, default=str),
            "time_s": round(float(m.get("time_total_s", 0.0) or 0.0), 2),
        })
    df = pd.DataFrame(rows, columns=["trial_id", "family", metric, "iterations", "status", "k", "params", "time_s"])
    return df.sort_values(metric, ascending=MODES[metric] == "min", na_position="last").reset_index(drop=True)
