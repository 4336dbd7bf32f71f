"""Load a raw table from a spec source: builtin, synthetic, or a CSV/Parquet path or URI."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

import numpy as np
import pandas as pd

from automodel.errors import DataError, SpecError

BUILTINS = ("digits", "breast_cancer", "wine", "iris", "diabetes")


@dataclass
class RawTable:
    """A loaded table and what is known about it before preprocessing."""

    frame: pd.DataFrame
    target: str
    image_shape: tuple[int, ...] | None = None


def _builtin(name: str) -> RawTable:
    from sklearn import datasets

    if name not in BUILTINS:
        raise SpecError(
            "data.source", f"unknown builtin dataset {name!r}; valid: {', '.join(BUILTINS)}"
        )
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    target = "label" if name == "digits" else "target"
    frame = frame.rename(columns={"target": target})
    return RawTable(frame, target, (8, 8) if name == "digits" else None)


def _synthetic(query: str) -> RawTable:
    from sklearn import datasets

    kind, _, params = query.partition("?")
    args = {k: v[-1] for k, v in parse_qs(params).items()}
    allowed = {"rows", "features", "seed", "classes", "informative", "noise"}
    unknown = set(args) - allowed
    if unknown:
        raise SpecError(
            "data.source",
            f"unknown synthetic parameter(s) {sorted(unknown)}; valid: {sorted(allowed)}",
        )
    try:
        rows = int(args.get("rows", 1000))
        features = int(args.get("features", 20))
        seed = int(args.get("seed", 0))
        classes = int(args.get("classes", 2))
        informative = int(args.get("informative", max(2, features // 2)))
        noise = float(args.get("noise", 10.0))
    except ValueError as exc:
        raise SpecError("data.source", f"synthetic parameters must be numbers: {exc}") from None
    if rows < 10 or features < 1:
        raise SpecError(
            "data.source",
            f"synthetic data needs rows >= 10 and features >= 1, got rows={rows}, features={features}",
        )
    if kind == "classification":
        X, y = datasets.make_classification(
            n_samples=rows,
            n_features=features,
            n_informative=min(informative, features),
            n_redundant=0,
            n_classes=classes,
            random_state=seed,
        )
    elif kind == "regression":
        X, y = datasets.make_regression(
            n_samples=rows,
            n_features=features,
            n_informative=min(informative, features),
            noise=noise,
            random_state=seed,
        )
    else:
        raise SpecError(
            "data.source", f"synthetic kind must be classification or regression, got {kind!r}"
        )
    frame = pd.DataFrame(X.astype(np.float32), columns=[f"x{i}" for i in range(features)])
    frame["target"] = y
    return RawTable(frame, "target")


def _file(uri: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    try:
        fs, path = pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), uri)
        if uri.lower().endswith((".parquet", ".pq")):
            return pq.read_table(path, filesystem=fs).to_pandas()
        if uri.lower().endswith(".csv"):
            # pandas' CSV reader infers mixed and missing columns the way users expect.
            with fs.open_input_stream(path) as f:
                return pd.read_csv(f)
        raise DataError(f"data.source: expected a .csv or .parquet file, got {uri}")
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"data.source: cannot read {uri}: {exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"data.source: cannot parse {uri}: {str(exc).splitlines()[0]}") from None


def load_table(source: str, target: str | None = None) -> RawTable:
    """Load the table a spec's ``data.source`` names.

    Args:
        source: ``builtin:NAME``, ``synthetic:KIND?rows=&features=&seed=``, or a path/URI.
        target: the target column; default: the source's own target, else the last column.
    """
    if source.startswith("builtin:"):
        table = _builtin(source.split(":", 1)[1])
    elif source.startswith("synthetic:"):
        table = _synthetic(source.split(":", 1)[1])
    else:
        frame = _file(source)
        if frame.shape[1] < 2:
            raise DataError(
                f"data.source: {source} has {frame.shape[1]} column(s); need features and a target"
            )
        table = RawTable(frame, frame.columns[-1])
    if target is not None:
        if target not in table.frame.columns:
            from automodel.data._columns import unknown_column

            raise unknown_column("data.target", target, list(table.frame.columns))
        if target != table.target:
            table = RawTable(table.frame, target, None)
    return table
