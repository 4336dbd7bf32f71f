"""Search: Ray Tune over model families, hyperparameters and the number of kept features."""

from automodel.search._ensemble import Ensemble, select_ensemble
from automodel.search._families import default_families, with_families
from automodel.search._result import SearchResult, leaderboard_from
from automodel.search._space import DefineByRun, decode, family_spaces, grid_configs
from automodel.search._tune import feature_ranking, has_sweep, tune

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
