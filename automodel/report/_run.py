"""The pipeline's hooks: what `run`, `tune` and `train` call once their work is done.

A finished model matters more than its report: a failure here is printed as a warning, and the
run still succeeds (``automodel report RUN_DIR`` redraws the report later).
"""

from __future__ import annotations

import sys
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from automodel.data import Dataset


def _warn(what: str, exc: BaseException) -> None:
    print(f"warning: {what} failed ({type(exc).__name__}: {exc})", file=sys.stderr)


def rank_while_searching(spec: Any, dataset: Dataset) -> Future | None:
    """Begin the report's feature ranking in a thread, when the spec ranks no features.

    The ranking is then for information only and depends on nothing the sweep decides: computed
    after it, it held the run 2 s on digits (mutual information of 64 columns); beside the sweep
    it costs nothing the user waits for. ``record_features`` takes the result.
    """
    if spec.features.method != "none":
        return None
    from concurrent.futures import ThreadPoolExecutor

    from automodel.report._evaluate import report_ranking

    pool = ThreadPoolExecutor(1, thread_name_prefix="automodel-ranking")
    future = pool.submit(report_ranking, dataset, spec.data.seed)
    pool.shutdown(wait=False)  # its one thread ends with the ranking
    return future


def record_features(
    run_dir: str | Path,
    spec: Any,
    dataset: Dataset,
    ranking: np.ndarray | Future | None,
    k: int | None,
) -> None:
    """Store the feature ranking for the report (computing it when the spec did not rank
    features, or taking what :func:`rank_while_searching` computed)."""
    from automodel.report._evaluate import write_features

    k_range = spec.features.k if isinstance(spec.features.k, list) else None
    if k is None and isinstance(spec.features.k, int):
        k = spec.features.k
    try:
        if isinstance(ranking, Future):
            ranking = ranking.result()
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
