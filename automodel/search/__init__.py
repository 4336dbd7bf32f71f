"""Search: Ray Tune over model families, hyperparameters and the number of kept features.

The names below load on first use: a trial actor imports :mod:`automodel.search._entry`, and
with it this package, and should not pay for Ray Tune's driver side, Optuna or torch then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Ensemble": "_ensemble",
    "select_ensemble": "_ensemble",
    "default_families": "_families",
    "with_families": "_families",
    "SearchResult": "_result",
    "leaderboard_from": "_result",
    "DefineByRun": "_space",
    "decode": "_space",
    "family_spaces": "_space",
    "grid_configs": "_space",
    "feature_ranking": "_tune",
    "has_sweep": "_tune",
    "tune": "_tune",
}

if TYPE_CHECKING:
    from automodel.search._ensemble import Ensemble, select_ensemble
    from automodel.search._families import default_families, with_families
    from automodel.search._result import SearchResult, leaderboard_from
    from automodel.search._space import DefineByRun, decode, family_spaces, grid_configs
    from automodel.search._tune import feature_ranking, has_sweep, tune


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'automodel.search' has no attribute {name!r}")
    return getattr(importlib.import_module(f"automodel.search.{_WHERE[name]}"), name)


__all__ = [
    "DefineByRun",
    "Ensemble",
    "SearchResult",
    "decode",
    "default_families",
    "family_spaces",
    "feature_ranking",
    "grid_configs",
    "has_sweep",
    "leaderboard_from",
    "select_ensemble",
    "tune",
    "with_families",
]
