"""SearchResult and the leaderboard written from a finished (or stopped) sweep."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automodel.contracts import LEADERBOARD_COLUMNS
from automodel.metrics import MODES
from automodel.search._space import decode

COLUMNS = list(LEADERBOARD_COLUMNS)  # the contract's; the metric column goes third


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
    families: list[str] = field(default_factory=list)  # the families searched
    families_from: str = "search.families"  # or the data shape they were chosen for


def trial_status(status: str, iterations: int, n_steps: int) -> str:
    """``completed``, ``stopped_early`` (fewer steps than its full fidelity), ``error`` or ``not_started``."""
    if status == "ERROR":
        return "error"
    if iterations == 0:
        return "not_started"
    if n_steps and iterations < n_steps:
        return "stopped_early"
    return "completed"


def _row(
    trial_id: str,
    config: dict,
    metric: str,
    value: Any,
    iters: int,
    status: str,
    time_s: float,
    device: str | None = None,
) -> dict:
    family, params, k = decode(config)
    return {
        "trial_id": trial_id,
        "family": family,
        metric: value,
        "iterations": iters,
        "status": status,
        "k": k if k is not None else "",
        "params": json.dumps(params, sort_keys=True, default=str),
        "time_s": round(float(time_s or 0.0), 2),
        "device": device or "",  # where the trial trained: "cuda" on a GPU it reserved, else "cpu"
    }


def leaderboard_from(trials: list, metric: str, journal: Any = None) -> pd.DataFrame:
    """One row a trial, best first: trial_id, family, <metric>, iterations, status, k, params, time_s, device.

    ``trials`` are Tune's trials of this session; ``journal`` (a resumed sweep's) adds the trials
    finished before the restart, with the scores and times they had then.
    """
    rows = []
    for tid, done in journal.finished.items() if journal is not None else ():
        results = journal.results.get(tid, [])
        last = results[-1] if results else {}
        status = trial_status("TERMINATED", done["iterations"], done["n_steps"])
        rows.append(
            _row(
                tid,
                done["config"],
                metric,
                last.get(metric),
                done["iterations"],
                status,
                last.get("time", 0.0),
                last.get("device"),
            )
        )
    for t in trials:
        cfg = t.config or {}
        if "family" not in cfg.get("grid", cfg):
            continue
        m = t.last_result or {}
        iters = int(m.get("training_iteration", 0) or 0)
        status = trial_status(t.status, iters, int(m.get("n_steps", 0) or 0))
        rows.append(
            _row(
                t.trial_id,
                cfg,
                metric,
                m.get(metric),
                iters,
                status,
                m.get("fit_s", m.get("time_total_s", 0.0)),
                m.get("device"),
            )
        )
    df = pd.DataFrame(rows, columns=[*COLUMNS[:2], metric, *COLUMNS[2:], "device"])
    return df.sort_values(
        metric, ascending=MODES[metric] == "min", na_position="last", kind="stable"
    ).reset_index(drop=True)
