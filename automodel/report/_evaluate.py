"""What the report needs that only the running pipeline has: the feature ranking, test predictions.

Both are small JSON files in the run directory, so ``automodel report`` can redraw the report
later without the data or the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automodel.contracts import EvaluationFile, FeaturesFile
from automodel.metrics import baseline_raw, predictions, scores_raw

if TYPE_CHECKING:
    from automodel.data import Dataset

FEATURES_FILE = "features.json"
EVALUATION_FILE = "evaluation.json"
MAX_POINTS = 2000  # predicted-vs-actual points kept for a regression plot
MAX_RANK_ROWS = 5000  # rows used to rank features for the report when the spec did not rank them


def report_ranking(dataset: Dataset, seed: int = 0) -> np.ndarray:
    """Mutual information of each encoded column with the target, on at most MAX_RANK_ROWS rows."""
    from automodel.features import rank_features

    return rank_features(
        dataset.X_train, dataset.y_train, dataset.task, seed=seed, max_rows=MAX_RANK_ROWS
    )


def write_features(
    run_dir: str | Path,
    dataset: Dataset,
    *,
    ranking: np.ndarray | None,
    k: int | None,
    k_range: Any = None,
    seed: int = 0,
) -> Path:
    """``features.json``: every encoded feature's mutual information with the target and which were kept.

    ``dataset`` is the full (unselected) one. Without a ``ranking`` (features.method: none) one is
    computed on at most MAX_RANK_ROWS rows, for information only.
    """
    from automodel.features import top_k

    names = list(dataset.preprocessor.feature_names)
    if ranking is None:
        ranking = report_ranking(dataset, seed)
    kept_idx = top_k(ranking, k)
    kept = names if kept_idx is None else [names[i] for i in kept_idx]
    out = FeaturesFile(
        method="mutual_info",
        names=names,
        scores=[round(float(s), 6) for s in ranking],
        k=k if kept_idx is not None else None,
        kept=kept,
        k_range=k_range,
    )
    return out.write(Path(run_dir) / FEATURES_FILE)


def write_evaluation(run_dir: str | Path, dataset: Dataset) -> Path | None:
    """``evaluation.json``: the artifact's test predictions, as a confusion matrix or sampled pairs,
    and the test metrics of the baseline that ignores the input (majority class, or the mean).

    Runs ``<run_dir>/artifact/model.onnx`` (the deployed model, compressed or not) on
    ``dataset.X_test``, which must be encoded and selected as the artifact expects.
    """
    import onnxruntime as ort

    from automodel.artifact import read_artifact

    art_dir = Path(run_dir) / "artifact"
    if not (art_dir / "card.json").is_file():
        return None
    artifact = read_artifact(art_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(artifact.onnx_path), opts, providers=["CPUExecutionProvider"]
    )
    raw = session.run(
        [artifact.output_name], {"input": np.ascontiguousarray(dataset.X_test, dtype=np.float32)}
    )[0]
    y, task = dataset.y_test, dataset.task
    n_classes = len(dataset.classes or []) or None
    base = scores_raw(task, y, baseline_raw(task, dataset.y_train, len(y), n_classes))
    pred, _ = predictions(task, raw)
    if task == "classification":
        n = len(dataset.classes or [])
        cm = np.zeros((n, n), dtype=np.int64)
        np.add.at(cm, (y.astype(np.int64), pred.astype(np.int64)), 1)
        out = EvaluationFile(
            task=task,
            n=len(y),
            labels=[str(c) for c in dataset.classes],
            confusion_matrix=cm.tolist(),
            baseline=base,
        )
    else:
        idx = np.arange(len(y))
        if len(y) > MAX_POINTS:
            idx = np.sort(np.random.default_rng(0).choice(len(y), MAX_POINTS, replace=False))
        out = EvaluationFile(
            task=task,
            n=len(y),
            y_true=[round(float(v), 6) for v in y[idx]],
            y_pred=[round(float(v), 6) for v in pred[idx]],
            baseline=base,
        )
    return out.write(Path(run_dir) / EVALUATION_FILE)
