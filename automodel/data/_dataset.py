"""Dataset: a loaded, split and preprocessed table, ready for every stage after data."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from automodel.data._preprocess import Preprocessor
from automodel.data._sources import load_table
from automodel.errors import DataError, SpecError
from automodel.spec import DataSpec


@dataclass
class Dataset:
    """Train/val/test splits as float32 features and encoded targets, plus the fitted preprocessor.

    For classification ``y`` holds class indices into ``classes``; for regression the raw value.
    ``raw_test`` keeps the test rows as loaded, so a test can replay them through a served model.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    preprocessor: Preprocessor
    task: str
    classes: list | None
    raw_test: pd.DataFrame
    sha256: str
    rows: int
    summary: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1

    def select(self, columns: list[int] | None) -> Dataset:
        """The same splits keeping only ``columns`` of the encoded features."""
        if columns is None:
            return self
        cols = np.asarray(columns)
        return Dataset(
            self.X_train[:, cols], self.y_train, self.X_val[:, cols], self.y_val, self.X_test[:, cols],
            self.y_test, self.preprocessor.with_selection(list(cols)), self.task, self.classes,
            self.raw_test, self.sha256, self.rows, self.summary,
        )


def infer_task(y: pd.Series) -> str:
    """Classification for text, bool or few distinct integer values; regression otherwise."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna()
    distinct = values.nunique()
    if np.allclose(values, np.round(values)) and distinct <= max(2, min(20, len(values) // 10)):
        return "classification"
    return "regression"


def _frame_sha256(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def load_dataset(spec: DataSpec) -> Dataset:
    """Load ``spec.source``, drop rows without a target, split and fit the preprocessor on train."""
    table = load_table(spec.source, spec.target)
    frame, target = table.frame, table.target
    missing = frame[target].isna()
    if missing.any():
        warnings.warn(f"dropped {int(missing.sum())} row(s) with a missing target {target!r}", stacklevel=2)
        frame = frame[~missing].reset_index(drop=True)
    if len(frame) < 10:
        raise DataError(f"data: need at least 10 rows with a target, got {len(frame)}")
    task = spec.task or infer_task(frame[target])
    y_raw = frame[target]
    classes = None
    if task == "classification":
        codes, uniques = pd.factorize(y_raw, sort=True)
        classes = [u.item() if isinstance(u, np.generic) else u for u in uniques.tolist()]
        if len(classes) < 2:
            raise DataError(f"data.target: classification needs at least 2 classes, got {classes}")
        y = codes.astype(np.int64)
    else:
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise SpecError("data.task", f"regression needs a numeric target; {target!r} is {y_raw.dtype}")
        y = y_raw.to_numpy(dtype=np.float32)

    idx = np.arange(len(frame))
    strat = y if task == "classification" and np.bincount(y).min() >= 3 else None
    rest, test = train_test_split(idx, test_size=spec.test_size, random_state=spec.seed, stratify=strat)
    strat_rest = y[rest] if strat is not None else None
    train, val = train_test_split(rest, test_size=spec.val_size, random_state=spec.seed, stratify=strat_rest)

    prep = Preprocessor.fit(frame.iloc[train], target, task, classes, table.image_shape)
    features = frame.drop(columns=[target])
    X = prep.transform(features)
    summary = {
        "rows": int(len(frame)),
        "columns": int(features.shape[1]),
        "target": str(target),
        "task": task,
        "missing_values": int(features.isna().sum().sum()),
        "dropped_target_rows": int(missing.sum()),
        "dropped_columns": prep.dropped,
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
    }
    if classes is not None:
        summary["class_counts"] = {str(c): int(n) for c, n in zip(classes, np.bincount(y, minlength=len(classes)))}
    return Dataset(
        X[train], y[train], X[val], y[val], X[test], y[test], prep, task, classes,
        frame.iloc[test].reset_index(drop=True), _frame_sha256(frame), int(len(frame)), summary,
    )
