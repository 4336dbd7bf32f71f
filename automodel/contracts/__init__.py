"""Contracts: the typed, versioned records that cross a stage boundary.

Producers write them with these models, consumers read them with these models; nothing passes
between stages as an untyped dict. This package sits at the bottom of the layering: it imports
nothing of automodel but :mod:`automodel.errors`.

==================  ======================  ========================================
record              file                    written by → read by
==================  ======================  ========================================
:class:`Card`       ``artifact/card.json``  pipeline, compress → serve, compress, report
LeaderboardRow      ``leaderboard.csv``     search → report
JournalLine         ``trials.jsonl``        search → search (resume), report
FeaturesFile        ``features.json``       report hooks → report
EvaluationFile      ``evaluation.json``     report hooks → report
RunSummary          ``result.json``         pipeline → report
==================  ======================  ========================================
"""

from automodel.contracts._base import Contract
from automodel.contracts._card import (
    Card,
    Compression,
    DataInfo,
    DataSummary,
    HistoryRow,
    Metrics,
    OnnxInfo,
    Rejected,
    SearchInfo,
    TrainInfo,
    VariantInfo,
)
from automodel.contracts._run import EvaluationFile, FeaturesFile, RunSummary
from automodel.contracts._search import (
    LEADERBOARD_COLUMNS,
    OPTIONAL_COLUMNS,
    JournalLine,
    LeaderboardRow,
    leaderboard_columns,
    read_journal,
    read_leaderboard,
    write_leaderboard,
)

__all__ = [
    "LEADERBOARD_COLUMNS",
    "OPTIONAL_COLUMNS",
    "Card",
    "Compression",
    "Contract",
    "DataInfo",
    "DataSummary",
    "EvaluationFile",
    "FeaturesFile",
    "HistoryRow",
    "JournalLine",
    "LeaderboardRow",
    "Metrics",
    "OnnxInfo",
    "Rejected",
    "RunSummary",
    "SearchInfo",
    "TrainInfo",
    "VariantInfo",
    "leaderboard_columns",
    "read_journal",
    "read_leaderboard",
    "write_leaderboard",
]
