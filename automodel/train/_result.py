"""TrainedModel: the output of the train stage, whatever ran it; Refit: what a refit repeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automodel.models import Family


@dataclass(frozen=True)
class Refit:
    """Retrain on train + validation, repeating what the search's winner did.

    ``epochs``: the epochs (torch) or fidelity steps (trees) the winning trial trained for;
    ``schedule_epochs``: the length of its learning-rate schedule (``search.max_epochs``), so a
    trial ASHA stopped early is repeated with the rates it saw; ``val_score``: its validation
    score, the last one measured before the validation rows joined the training rows.
    """

    epochs: int
    val_score: float | None = None
    schedule_epochs: int | None = None

    @classmethod
    def of_search(cls, result: Any, schedule_epochs: int) -> Refit | None:
        """What the winner of ``result`` (a ``SearchResult``) did: its steps and its val score.

        The leaderboard's score is the trial's last report, so its ``iterations`` are the
        epochs (or tree steps) that reached it.
        """
        board = result.leaderboard.dropna(subset=[result.metric])
        if board.empty:
            return None
        steps = int(board.iloc[0]["iterations"])
        return cls(epochs=max(steps, 1), val_score=result.score, schedule_epochs=schedule_epochs)


@dataclass
class TrainedModel:
    """A fitted family instance plus how it was trained.

    ``info`` is the card's ``train`` section: workers, use_gpu, epochs, restarts, wall_s, and
    where the seconds went (startup_s, fit_s), which backend and why (``workers_reason``).
    ``history`` holds one dict an epoch (train_loss, val metric, lr) for the report.
    ``val_score`` is the validation metric of the kept weights: the kept epoch's, or after a refit
    on train + validation, the search winner's from before the refit.
    """

    model: Family
    family: str
    params: dict[str, Any]
    info: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    state_dict: dict | None = None
    val_score: float | None = None


__all__ = ["Refit", "TrainedModel"]
