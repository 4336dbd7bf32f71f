"""Read what a run directory holds, through the contracts, tolerating every part a stage did not write.

Plain file reading (JSON, CSV, YAML) and the contracts' models: no Ray, torch or pandas, so
``automodel report RUN_DIR`` is quick and works on a copy of a run directory anywhere. A file
that does not fit its contract is left out with a warning in the report, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from automodel.contracts import (
    Card,
    Contract,
    EvaluationFile,
    FeaturesFile,
    JournalLine,
    LeaderboardRow,
    RunSummary,
    read_journal,
    read_leaderboard,
)
from automodel.errors import ArtifactError, AutomodelError
from automodel.metrics import MODES

# What marks a directory as a run directory: any one of these.
RUN_MARKERS = ("spec.yaml", "leaderboard.csv", "artifact/card.json")

C = TypeVar("C", bound=Contract)


class ReportError(AutomodelError):
    """The report cannot be written: the directory is not a run directory, or is unreadable."""


@dataclass
class RunData:
    """Everything the report shows, each part None or empty when the run did not write it."""

    run_dir: Path
    spec_text: str = ""
    name: str | None = None  # the spec's name
    leaderboard: list[LeaderboardRow] = field(default_factory=list)
    metric: str | None = None
    trials: list[JournalLine] = field(default_factory=list)
    card: Card | None = None
    features: FeaturesFile | None = None
    evaluation: EvaluationFile | None = None
    result: RunSummary | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return MODES.get(self.metric or "", "max")

    @property
    def best_family(self) -> str | None:
        if self.card is not None:
            return self.card.family
        return self.leaderboard[0].family if self.leaderboard else None


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory.

    Raises:
        ReportError: if ``run_dir`` does not exist or holds none of spec.yaml, leaderboard.csv,
            artifact/card.json.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(
            f"report: {run_dir} is not a directory; give the run directory of `automodel run`"
        )
    if not any((path / m).is_file() for m in RUN_MARKERS):
        raise ReportError(
            f"report: {run_dir} is not a run directory (it has none of {', '.join(RUN_MARKERS)})"
        )
    data = RunData(path.resolve())
    if (path / "spec.yaml").is_file():
        import yaml

        data.spec_text = (path / "spec.yaml").read_text()
        try:
            spec = yaml.safe_load(data.spec_text)
        except yaml.YAMLError as exc:
            data.warnings.append(f"spec.yaml: not valid YAML ({str(exc).splitlines()[0]})")
        else:
            data.name = spec.get("name") if isinstance(spec, dict) else None
    data.card = _read(data, Card, path / "artifact" / "card.json")
    data.features = _read(data, FeaturesFile, path / "features.json")
    data.evaluation = _read(data, EvaluationFile, path / "evaluation.json")
    data.result = _read(data, RunSummary, path / "result.json")
    try:
        data.metric, data.leaderboard = read_leaderboard(path / "leaderboard.csv")
    except ArtifactError as exc:
        data.warnings.append(str(exc))
    if data.metric is None:
        data.metric = data.card.metric if data.card else data.result.metric if data.result else None
    data.trials, skipped = read_journal(path / "trials.jsonl")
    data.warnings += skipped
    return data


def _read(data: RunData, contract: type[C], path: Path) -> C | None:
    if not path.is_file():
        return None
    try:
        return contract.read(path)
    except ArtifactError as exc:
        data.warnings.append(str(exc))
        return None
