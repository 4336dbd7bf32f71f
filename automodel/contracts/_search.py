"""The search's records: a ``leaderboard.csv`` row and a ``trials.jsonl`` line.

Both name their score column after the spec's metric (``accuracy``, ``rmse``, ...), so the
models keep it as ``score`` and take the metric's name when they are written or read.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from automodel.contracts._base import Contract
from automodel.errors import ArtifactError

# leaderboard.csv: these columns, with the metric's column third; optional ones after them.
LEADERBOARD_COLUMNS = ("trial_id", "family", "iterations", "status", "k", "params", "time_s")
OPTIONAL_COLUMNS = ("device", "rows_seen", "refit", "ensemble")


def leaderboard_columns(metric: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The CSV header: trial_id, family, <metric>, iterations, status, k, params, time_s, extra..."""
    return [*LEADERBOARD_COLUMNS[:2], metric, *LEADERBOARD_COLUMNS[2:], *extra]


class LeaderboardRow(Contract):
    """One trial of the sweep, as ``leaderboard.csv`` lists it (best first)."""

    trial_id: str
    family: str
    score: float | None = None  # the metric's column
    iterations: int = 0
    # completed | stopped_early | error | not_started | interrupted | fallback (the budget ended
    # before any trial reported: the cheapest searched family at its defaults, fitted in-process)
    status: str = "completed"
    k: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    time_s: float | None = None
    device: str | None = None
    rows_seen: int | None = None
    refit: bool | None = None
    ensemble: bool | None = None

    def csv_row(self, metric: str) -> dict[str, Any]:
        """The row as the CSV holds it: the score under the metric's name, params as JSON."""
        row = {
            "trial_id": self.trial_id,
            "family": self.family,
            metric: self.score,
            "iterations": self.iterations,
            "status": self.status,
            "k": "" if self.k is None else self.k,
            "params": json.dumps(self.params, sort_keys=True, default=str),
            "time_s": self.time_s,
        }
        for name in OPTIONAL_COLUMNS:
            if getattr(self, name) is not None:
                row[name] = getattr(self, name)
        return row

    @classmethod
    def from_csv(cls, row: dict[str, str], metric: str, *, source: str | Path) -> LeaderboardRow:
        """Parse one CSV row (strings) back; an empty cell takes the field's default."""
        raw: dict[str, Any] = {
            k: v for k, v in row.items() if k is not None and v not in ("", None)
        }
        raw["score"] = raw.pop(metric, None)
        try:
            raw["params"] = json.loads(raw.get("params", "{}"))
        except json.JSONDecodeError:
            raise ArtifactError(
                f"{source}: trial {raw.get('trial_id')}: params is not JSON"
            ) from None
        for flag in ("refit", "ensemble"):
            if flag in raw:
                raw[flag] = raw[flag].strip().lower() in ("true", "1")
        for count in ("schema_version", "iterations", "k", "rows_seen"):
            if count in raw:  # pandas writes 3.0 for an integer column that has a gap
                try:
                    raw[count] = int(float(raw[count]))
                except ValueError:
                    pass  # validation names the field
        return cls.load(raw, source=source)


def write_leaderboard(path: str | Path, rows: list[LeaderboardRow], metric: str) -> Path:
    """Write ``leaderboard.csv``: the fixed columns, the optional ones any row has, the version."""
    path = Path(path)
    extra = tuple(c for c in OPTIONAL_COLUMNS if any(getattr(r, c) is not None for r in rows))
    columns = [*leaderboard_columns(metric, extra), "schema_version"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r.csv_row(metric), "schema_version": r.schema_version})
    return path


def read_leaderboard(path: str | Path) -> tuple[str | None, list[LeaderboardRow]]:
    """The metric's name (the third column) and the rows; ([], None) when there is no file."""
    path = Path(path)
    if not path.is_file():
        return None, []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        rows = list(reader)
    if len(columns) < 3 or columns[2] in LEADERBOARD_COLUMNS:
        raise ArtifactError(
            f"{path}: not a leaderboard (columns {columns}; expected "
            f"{', '.join(leaderboard_columns('<metric>'))})"
        )
    metric = columns[2]
    return metric, [LeaderboardRow.from_csv(r, metric, source=path) for r in rows]


class JournalLine(Contract):
    """One reported result of one trial, a line of ``trials.jsonl``, in arrival order.

    The score is stored under the metric's name (``{"accuracy": 0.95}``); :meth:`score` reads it.
    """

    trial_id: str
    family: str | None = None
    k: int | None = None
    iteration: int = 0
    loss: float | None = None
    time: float | None = None  # seconds the trial has trained so far
    device: str | None = None
    rows_seen: int | None = None

    @classmethod
    def make(cls, *, metric: str, score: float, **fields: Any) -> JournalLine:
        return cls(**fields, **{metric: score})

    def score(self, metric: str) -> float | None:
        value = (self.model_extra or {}).get(metric)
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )

    def line(self) -> str:
        return self.model_dump_json(exclude_none=False) + "\n"


def read_journal(path: str | Path) -> tuple[list[JournalLine], list[str]]:
    """The lines of ``trials.jsonl`` and a warning for each line skipped (a torn last line)."""
    path = Path(path)
    if not path.is_file():
        return [], []
    lines, warnings = [], []
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:  # a sweep killed mid-write leaves a torn last line
            warnings.append(f"{path.name}: line {n} is not JSON; skipped")
            continue
        try:
            lines.append(JournalLine.load(raw, source=f"{path}:{n}"))
        except ArtifactError as exc:
            warnings.append(str(exc))
    return lines, warnings
