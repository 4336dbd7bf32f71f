"""Files of a run directory that the report reads: ``features.json``, ``evaluation.json``,
``result.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from automodel.contracts._base import Contract


class FeaturesFile(Contract):
    """Every encoded feature's mutual information with the target, and which were kept."""

    method: str = "mutual_info"
    names: list[str]
    scores: list[float]
    k: int | None = None
    kept: list[str] = Field(default_factory=list)
    k_range: Any = None  # the searched range, e.g. [4, 13]


class EvaluationFile(Contract):
    """The artifact's test predictions: a confusion matrix, or sampled (actual, predicted) pairs."""

    task: Literal["classification", "regression"]
    n: int
    labels: list[str] = Field(default_factory=list)
    confusion_matrix: list[list[int]] | None = None
    y_true: list[float] = Field(default_factory=list)
    y_pred: list[float] = Field(default_factory=list)
    baseline: dict[str, float] = Field(default_factory=dict)  # majority class / mean, same metrics


class RunSummary(Contract):
    """``result.json``: what `automodel run` printed at the end."""

    family: str
    metric: str
    test: float | None = None
    wall_s: float | None = None
