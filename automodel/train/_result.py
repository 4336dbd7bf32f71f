"""TrainedModel: the output of the train stage, whatever ran it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automodel.models import Family


@dataclass
class TrainedModel:
    """A fitted family instance plus how it was trained.

    ``info`` is the card's ``train`` section: workers, use_gpu, epochs, restarts, wall_s.
    ``history`` holds one dict an epoch (train_loss, val metric) for the report.
    """

    model: Family
    family: str
    params: dict[str, Any]
    info: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    state_dict: dict | None = None
