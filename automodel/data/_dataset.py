"""Dataset: a loaded, split and preprocessed table, ready for every stage after data."""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from automodel.data._columns import DROPPED_BY_SPEC, check_columns
from automodel.data._files import FileSet, resolve_files
from automodel.data._leaks import warn_near_copies
from automodel.data._preprocess import Preprocessor
from automodel.data._sources import load_table
from automodel.data._stream import SPLIT_COLUMN, SPLITS, StreamSource, scan
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
    # Streamed data: the splits above hold the search's sample; the full splits stay in the files
    # and the final fit and test scoring read them through this (see data/_stream.py).
    stream: StreamSource | None = None

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
            self.X_train[:, cols],
            self.y_train,
            self.X_val[:, cols],
            self.y_val,
            self.X_test[:, cols],
            self.y_test,
            self.preprocessor.with_selection(list(cols)),
            self.task,
            self.classes,
            self.raw_test,
            self.sha256,
            self.rows,
            self.summary,
            self.stream,
        )

    def sample_train(self, rows: int, seed: int = 0) -> Dataset:
        """The same splits with at most ``rows`` training rows (a seeded draw, order kept): what
        search trials train on. Validation and test stay whole; streamed data is a sample already."""
        if len(self.X_train) <= rows:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.X_train), rows, replace=False))
        return replace(self, X_train=self.X_train[keep], y_train=self.y_train[keep])


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


def load_dataset(
    spec: DataSpec,
    *,
    files: FileSet | None = None,
    sample_rows: int = 100_000,
    progress: Callable[[str, str], None] | None = None,
) -> Dataset:
    """Load ``spec.source``, drop rows without a target, split and fit the preprocessor on train.

    Args:
        spec: the data section.
        files: stream these files (``stream_files(spec)``; needs a running Ray): one parallel
            pass fits the preprocessor and draws a sample of ``sample_rows`` training rows,
            which become the returned splits; the full splits stay in the files
            (``Dataset.stream``). None: the in-memory path.
        sample_rows: streamed data: training rows in the sample.
        progress: streamed data: where progress lines go.
    """
    if files is not None:
        return _streamed(spec, files, sample_rows, progress)
    if not isinstance(spec.source, str) or not spec.source.startswith(("builtin:", "synthetic:")):
        resolved = resolve_files(spec.source)
        if resolved.multi:  # stream: off with several files: read them all here
            return load_dataset(spec.model_copy(update={"source": _concat_local(resolved)}))
        spec = spec.model_copy(update={"source": _uri(resolved)})
    table = load_table(spec.source, spec.target)
    frame, target = table.frame, table.target
    check_columns(spec, frame.columns)
    if spec.drop:  # left out before anything sees the table: split, preprocessor, raw rows
        frame = frame.drop(columns=spec.drop)
    missing = frame[target].isna()
    if missing.any():
        warnings.warn(
            f"dropped {int(missing.sum())} row(s) with a missing target {target!r}", stacklevel=2
        )
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
            raise SpecError(
                "data.task", f"regression needs a numeric target; {target!r} is {y_raw.dtype}"
            )
        y = y_raw.to_numpy(dtype=np.float32)

    # here, not at the top: reading an artifact (predict, serve) imports this module, and
    # scikit-learn's import is 2-6 s that scoring never needs
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(frame))
    strat = y if task == "classification" and np.bincount(y).min() >= 3 else None
    rest, test = train_test_split(
        idx, test_size=spec.test_size, random_state=spec.seed, stratify=strat
    )
    strat_rest = y[rest] if strat is not None else None
    train, val = train_test_split(
        rest, test_size=spec.val_size, random_state=spec.seed, stratify=strat_rest
    )

    image_shape = None if spec.drop else table.image_shape  # a dropped pixel breaks the image
    prep = Preprocessor.fit(frame.iloc[train], target, task, classes, image_shape)
    prep.dropped.update({name: DROPPED_BY_SPEC for name in spec.drop})
    # before the search: a column that is the answer in disguise (logwage beside wage)
    warn_near_copies(frame.iloc[train], target, task, prep.input_columns, spec.seed)
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
        summary["class_counts"] = {
            str(c): int(n) for c, n in zip(classes, np.bincount(y, minlength=len(classes)))
        }
    return Dataset(
        X[train],
        y[train],
        X[val],
        y[val],
        X[test],
        y[test],
        prep,
        task,
        classes,
        frame.iloc[test].reset_index(drop=True),
        _frame_sha256(frame),
        int(len(frame)),
        summary,
    )


def _uri(files: FileSet) -> str:
    kind = files.filesystem.type_name
    return files.paths[0] if kind == "local" else f"{kind}://{files.paths[0]}"


def _concat_local(files: FileSet) -> str:
    """Several files read into one local Parquet file (``data.stream: off``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from automodel.data._files import _read_positioned, read_schema

    schema = read_schema(files) if files.format == "csv" else None
    tables = [
        t for i in range(len(files)) for t in _read_positioned(files.subset([i]), 0, None, schema)
    ]
    table = pa.concat_tables(tables, promote_options="permissive").drop_columns(["__file", "__row"])
    path = tempfile.NamedTemporaryFile(prefix="automodel-", suffix=".parquet", delete=False).name
    pq.write_table(table, path)
    return path


def _streamed(spec: DataSpec, files: FileSet, sample_rows: int, progress) -> Dataset:
    """The search's sample as in-memory splits, the full splits as a stream."""
    load = scan(spec, files, sample_rows, progress)
    prep, stream, sample = load.preprocessor, load.stream, load.sample
    splits = []
    for s in range(3):
        rows = sample[sample[SPLIT_COLUMN] == s]
        X = prep.transform(rows) if len(rows) else np.zeros((0, prep.n_features), np.float32)
        splits += [X, stream.encode_target(rows[stream.target])]
    internal = [SPLIT_COLUMN, "__row", *spec.drop]
    raw_test = sample[sample[SPLIT_COLUMN] == 2].drop(columns=internal).reset_index(drop=True)
    identity = json.dumps([files.names, files.sizes, stream.file_rows]).encode()
    stats = load.stats
    summary = {
        "rows": int(sum(stream.counts.values())),
        "columns": len(prep.columns) + len(prep.dropped),
        "target": stream.target,
        "task": stream.task,
        "missing_values": int(sum(c["missing_all"] for c in stats["columns"].values())),
        "dropped_target_rows": int(stats["no_target"]),
        "dropped_columns": prep.dropped,
        "splits": dict(stream.counts),
        "streamed": {
            "files": len(files),
            "bytes": files.total_bytes,
            "read_s": round(load.seconds, 2),
            "search_rows": {
                name: int((sample[SPLIT_COLUMN] == s).sum()) for s, name in enumerate(SPLITS)
            },
            "key": spec.key or "file and row position",
        },
    }
    if stream.classes is not None:
        counts = {json.loads(k): n for k, n in stats["target"]["values"].items()}
        summary["class_counts"] = {str(c): int(counts.get(c, 0)) for c in stream.classes}
    return Dataset(
        *splits,
        prep,
        stream.task,
        stream.classes,
        raw_test,
        hashlib.sha256(identity).hexdigest(),
        summary["rows"],
        summary,
        stream,
    )
