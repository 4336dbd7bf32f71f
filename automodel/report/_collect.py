"""Read what a run directory holds, tolerating every part that a stage did not write.

Everything here is plain file reading (JSON, CSV, YAML, Markdown): no Ray, torch or pandas, so
``automodel report RUN_DIR`` is quick and works on a copy of a run directory anywhere.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automodel.errors import AutomodelError

# What marks a directory as a run directory: any one of these.
RUN_MARKERS = ("spec.yaml", "leaderboard.csv", "artifact/card.json")


class ReportError(AutomodelError):
    """The report cannot be written: the directory is not a run directory, or is unreadable."""


@dataclass
class RunData:
    """Everything the report shows, each part None or empty when the run did not write it."""

    run_dir: Path
    spec_text: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    metric: str | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    benchmarks: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "min" if self.metric == "rmse" else "max"

    @property
    def best_family(self) -> str | None:
        if self.card:
            return self.card.get("family")
        return self.leaderboard[0]["family"] if self.leaderboard else None


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
            data.spec = yaml.safe_load(data.spec_text) or {}
        except yaml.YAMLError as exc:
            data.warnings.append(f"spec.yaml: not valid YAML ({str(exc).splitlines()[0]})")
    data.card = _json(data, path / "artifact" / "card.json")
    data.features = _json(data, path / "features.json")
    data.evaluation = _json(data, path / "evaluation.json")
    data.result = _json(data, path / "result.json")
    data.leaderboard, data.metric = _leaderboard(path / "leaderboard.csv")
    if data.metric is None:
        data.metric = (data.card or {}).get("metric") or (data.result or {}).get("metric")
    data.trials = _jsonl(data, path / "trials.jsonl")
    data.benchmarks = serving_benchmarks(path)
    return data


def _json(data: RunData, path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        data.warnings.append(f"{path.name}: unreadable JSON ({exc})")
        return None


def _jsonl(data: RunData, path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a sweep killed mid-write leaves a torn last line
            data.warnings.append(f"{path.name}: line {n} is not JSON; skipped")
    return rows


def _number(v: str) -> Any:
    if v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


LEADERBOARD_FIXED = ("trial_id", "family", "iterations", "status", "k", "params", "time_s")


def _leaderboard(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Rows as dicts (numbers parsed, params decoded) and the metric column's name."""
    if not path.is_file():
        return [], None
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        rows = list(reader)
    # The metric is the third column by contract; fall back to the first non-fixed one.
    metric = (
        columns[2]
        if len(columns) > 2 and columns[2] not in LEADERBOARD_FIXED
        else next((c for c in columns if c not in LEADERBOARD_FIXED), None)
    )
    out = []
    for row in rows:
        parsed = {
            k: (row[k] if k in ("trial_id", "family", "status", "params") else _number(row[k]))
            for k in row
        }
        try:
            parsed["params"] = json.loads(row.get("params") or "{}")
        except json.JSONDecodeError:
            parsed["params"] = {"raw": row.get("params")}
        out.append(parsed)
    return out, metric


_SECTION = re.compile(r"<!-- begin:(?P<name>[^ ]+) -->\s*(?P<body>.*?)<!-- end:(?P=name) -->", re.S)


def serving_benchmarks(run_dir: Path) -> list[dict[str, str]]:
    """Serving sections of benchmarks/RESULTS.md (the run's own copy first, else the project's)."""
    candidates = [
        run_dir / "RESULTS.md",
        run_dir / "benchmarks" / "RESULTS.md",
        Path.cwd() / "benchmarks" / "RESULTS.md",
        Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md",
    ]
    for path in candidates:
        if path.is_file():
            text = path.read_text(errors="replace")
            out = []
            for m in _SECTION.finditer(text):
                if (
                    "serv" in m.group("name").lower()
                    or "serv" in m.group("body").split("\n", 1)[0].lower()
                ):
                    out.append(
                        {
                            "name": m.group("name"),
                            "markdown": m.group("body").strip(),
                            "source": str(path),
                        }
                    )
            if out:
                return out
    return []
