"""The pipeline's hooks: what `run`, `tune` and `train` call once their work is done.

A finished model matters more than its report: a failure here is printed as a warning, and the
run still succeeds (``automodel report RUN_DIR`` redraws the report later).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from automodel.data import Dataset


def _warn(what: str, exc: BaseException) -> None:
    print(f"warning: {what} failed ({type(exc).__name__}: {exc})", file=sys.stderr)


def record_features(
    run_dir: str | Path, spec: Any, dataset: Dataset, ranking: np.ndarray | None, k: int | None
) -> None:
    """Store the feature ranking for the report (computing it when the spec did not rank features)."""
    from automodel.report._evaluate import write_features

    k_range = spec.features.k if isinstance(spec.features.k, list) else None
    if k is None and isinstance(spec.features.k, int):
        k = spec.features.k
    try:
        write_features(run_dir, dataset, ranking=ranking, k=k, k_range=k_range, seed=spec.data.seed)
    except Exception as exc:
        _warn("report: feature ranking", exc)


def finish_run(
    run_dir: str | Path, spec: Any, dataset: Dataset | None = None, progress: Any = None
) -> Path | None:
    """Test predictions (when a model was trained), final tracking, then ``report.html``.

    ``dataset`` is the one the artifact was trained on (features already selected).
    """
    from automodel.report._html import write_report
    from automodel.report._tracking import log_final

    run_dir = Path(run_dir)
    if dataset is not None and (run_dir / "artifact" / "card.json").is_file():
        from automodel.report._evaluate import write_evaluation

        try:
            write_evaluation(run_dir, dataset)
        except Exception as exc:
            _warn("report: test predictions", exc)
    path = None
    try:
        path = write_report(run_dir)
        if progress is not None:
            progress("report", str(path))
    except Exception as exc:
        _warn("report: report.html", exc)
    log_final(spec, run_dir)  # after the report, so the final MLflow run carries it
    return path
