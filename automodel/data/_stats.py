"""Streamed data's statistics: per-block partials merged on the driver, then the preprocessor.

One pass over the files (:func:`automodel.data._stream.scan`) computes for each block counts,
sums, category counts, missing counts and the target's values (:func:`block_stats`); the driver
merges them (:func:`merge_stats`) and :func:`finalize` turns the merge into the same ``Preprocessor``
(and preprocess.json) the in-memory path fits.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from automodel.data._files import FILE_COLUMN, FileSet, read_schema
from automodel.data._preprocess import (
    DATE_PARTS,
    ONEHOT_MAX,
    ORDINAL_MAX,
    Column,
    Preprocessor,
    date_fill,
    date_parts,
    parse_dates,
)
from automodel.data._rowsplit import (
    SALT_SAMPLE,
    SPLIT_COLUMN,
    TEST,
    TRAIN,
    VAL,
    assign_splits,
    mix_hash,
    row_hash,
    uniform_of,
)
from automodel.errors import DataError

MAX_TARGET_VALUES = 10_000  # distinct target values kept per block; more is a regression target
MAX_CATEGORIES = 2 * ORDINAL_MAX  # distinct values counted per block; more is an identifier


# ---- one pass: per-block partial statistics, merged on the driver ------------------------------
@dataclass
class ScanPlan:
    target: str
    key: str | None
    seed: int
    test_size: float
    val_size: float
    kinds: dict[str, str]  # feature column -> numeric | categorical | date | textdate | null
    sample_frac: tuple[float, float, float]  # per split


def column_kinds(schema, exclude: set[str]) -> dict[str, str]:
    import pyarrow as pa

    kinds = {}
    for f in schema:
        if f.name in exclude:
            continue
        t = f.type
        if pa.types.is_boolean(t):
            kinds[f.name] = "categorical"
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[f.name] = "numeric"
        elif pa.types.is_timestamp(t) or pa.types.is_date(t):
            kinds[f.name] = "date"
        elif pa.types.is_null(t):
            kinds[f.name] = "null"
        else:  # text: a category, or dates written as text (decided once the counts are in)
            kinds[f.name] = "textdate"
    return kinds


def _value(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _date_stats(s: pd.Series) -> dict:
    d = parse_dates(s).dropna()
    parts = date_parts(d, [*DATE_PARTS, "hour"])
    return {
        "n": int(len(d)),
        "sum": {p: float(v.sum()) for p, v in parts.items()},
        "sumsq": {p: float((v * v).sum()) for p, v in parts.items()},
        "time": bool(len(d)) and bool((d != d.dt.normalize()).any()),
    }


def block_stats(frame: pd.DataFrame, plan: ScanPlan) -> dict:
    """Everything the preprocessor and the task need from one block, as plain JSON values."""
    h = row_hash(frame, plan.key, plan.seed)
    split = assign_splits(h, plan.test_size, plan.val_size)
    has_target = frame[plan.target].notna().to_numpy()
    out: dict[str, Any] = {"rows": int(len(frame)), "no_target": int((~has_target).sum())}
    out["splits"] = [int(((split == s) & has_target).sum()) for s in (TRAIN, VAL, TEST)]
    files = frame[FILE_COLUMN].to_numpy()
    out["files"] = {
        str(name): [int((files == name).sum())]
        + [int(((files == name) & (split == s) & has_target).sum()) for s in (TRAIN, VAL)]
        for name in np.unique(files)
    }
    y = frame[plan.target][has_target]
    counts = y.value_counts()
    out["target"] = {
        "numeric": bool(pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)),
        "integral": bool(
            pd.api.types.is_numeric_dtype(y)
            and not pd.api.types.is_bool_dtype(y)
            and np.allclose(y, np.round(y))
        ),
        "values": [[_value(v), int(n)] for v, n in counts.items()]
        if len(counts) <= MAX_TARGET_VALUES
        else None,
        "distinct": int(len(counts)),
    }
    train = frame[(split == TRAIN) & has_target]
    cols: dict[str, dict] = {}
    for name, kind in plan.kinds.items():
        s = train[name]
        stats: dict[str, Any] = {
            "n": int(len(s)),
            "missing": int(s.isna().sum()),
            "missing_all": int(frame[name].isna().sum()),
        }
        if kind == "numeric":
            v = s.dropna().astype(float).to_numpy()
            stats.update(sum=float(v.sum()), sumsq=float((v * v).sum()))
        elif kind in ("categorical", "textdate"):
            vc = s.dropna().astype(str).value_counts()
            stats["counts"] = (
                {str(k): int(n) for k, n in vc.items()} if len(vc) <= MAX_CATEGORIES else None
            )
            stats["distinct"] = int(len(vc))
            if kind == "textdate":
                try:
                    stats["date"] = _date_stats(s)
                except (ValueError, TypeError, OverflowError):
                    stats["date"] = None
        elif kind == "date":
            stats["date"] = _date_stats(s)
        cols[name] = stats
    out["columns"] = cols
    u = uniform_of(mix_hash(h ^ SALT_SAMPLE))
    frac = np.asarray(plan.sample_frac)[split]
    pick = has_target & (u < frac)
    sample = frame[pick].drop(columns=[c for c in (FILE_COLUMN,) if c in frame]).copy()
    sample[SPLIT_COLUMN] = split[pick]
    sample["__u"] = u[pick]
    buf = io.BytesIO()
    sample.reset_index(drop=True).to_parquet(buf)
    return {"stats": [json.dumps(out)], "sample": [buf.getvalue()]}


def merge_stats(parts: list[dict]) -> dict:
    total: dict[str, Any] = {
        "rows": 0,
        "no_target": 0,
        "splits": [0, 0, 0],
        "files": {},
        "columns": {},
    }
    target = {"numeric": True, "integral": True, "values": {}, "overflow": False, "distinct": 0}
    for p in parts:
        total["rows"] += p["rows"]
        total["no_target"] += p["no_target"]
        total["splits"] = [a + b for a, b in zip(total["splits"], p["splits"])]
        for name, counts in p["files"].items():
            r = total["files"].setdefault(name, [0, 0, 0])
            for i, n in enumerate(counts):
                r[i] += n
        t = p["target"]
        if t["distinct"]:
            target["numeric"] &= t["numeric"]
            target["integral"] &= t["integral"]
        if t["values"] is None or target["overflow"]:
            target["overflow"] = True
            target["distinct"] = max(target["distinct"], t["distinct"])
        else:
            for v, n in t["values"]:
                k = json.dumps(v)
                target["values"][k] = target["values"].get(k, 0) + n
            if len(target["values"]) > MAX_TARGET_VALUES:
                target["overflow"] = True
        for name, s in p["columns"].items():
            m = total["columns"].get(name)
            if m is None:
                total["columns"][name] = json.loads(json.dumps(s))
                continue
            for k in ("n", "missing", "missing_all"):
                m[k] += s[k]
            if "sum" in s:
                m["sum"] += s["sum"]
                m["sumsq"] += s["sumsq"]
            if "counts" in s:
                if m["counts"] is None or s["counts"] is None:
                    m["counts"] = None
                    m["distinct"] = max(m["distinct"], s["distinct"])
                else:
                    for k, n in s["counts"].items():
                        m["counts"][k] = m["counts"].get(k, 0) + n
                    m["distinct"] = len(m["counts"])
                    if m["distinct"] > MAX_CATEGORIES:
                        m["counts"] = None
            if "date" in s:
                if m.get("date") is None or s["date"] is None:
                    m["date"] = (
                        m.get("date") if s["date"] is None and m.get("date") is not None else None
                    )
                    if s["date"] is None:
                        m["date_failed"] = True
                else:
                    d, e = m["date"], s["date"]
                    d["n"] += e["n"]
                    d["time"] = d["time"] or e["time"]
                    for p_ in d["sum"]:
                        d["sum"][p_] += e["sum"][p_]
                        d["sumsq"][p_] += e["sumsq"][p_]
    if not target["overflow"]:
        target["distinct"] = len(target["values"])
    total["target"] = target
    return total


# ---- statistics -> the Preprocessor the in-memory path would fit --------------------------------
def infer_task(target: dict, n: int) -> str:
    """``infer_task``'s rule on merged statistics."""
    if not target["numeric"]:
        return "classification"
    if (
        target["integral"]
        and not target["overflow"]
        and target["distinct"] <= max(2, min(20, n // 10))
    ):
        return "classification"
    return "regression"


def class_values(target: dict) -> list:
    return sorted(json.loads(k) for k in target["values"])


def finalize(
    stats: dict,
    sample_train: pd.DataFrame,
    kinds: dict[str, str],
    target: str,
    task: str,
    classes: list | None,
    dropped: dict[str, str] | None = None,
) -> Preprocessor:
    """The fitted preprocessor from merged training statistics; medians (numeric fill, the date
    fill) come from ``sample_train``, the training rows of the sample (all of them when the
    sample holds the whole split: then every statistic equals the in-memory fit's)."""
    columns, dropped = [], dict(dropped or {})
    for name, kind in kinds.items():
        s = stats["columns"][name]
        n, missing = s["n"], s["missing"]
        if kind == "null" or missing == n:
            dropped[name] = "all values missing"
            continue
        if kind == "textdate":
            distinct = s["distinct"] if s["counts"] is None else len(s["counts"])
            looks = (
                s.get("date") is not None
                and not s.get("date_failed")
                and s["date"]["n"] == n - missing
            )
            if distinct > ONEHOT_MAX and looks and looks_like_dates(sample_train[name]):
                kind = "date"
            else:
                kind = "categorical"
        if kind == "numeric":
            vals = sample_train[name].astype(float)
            fill = float(vals.median())
            mean = (s["sum"] + missing * fill) / n
            var = max((s["sumsq"] + missing * fill * fill) / n - mean * mean, 0.0)
            columns.append(Column(name, "numeric", fill, float(mean), float(np.sqrt(var)) or 1.0))
        elif kind == "date":
            d = s["date"]
            dates = parse_dates(sample_train[name]).dropna()
            fill = date_fill(dates)
            parts = [*DATE_PARTS, "hour"] if d["time"] else list(DATE_PARTS)
            fill_parts = date_parts(pd.Series([pd.Timestamp(fill)]), parts)
            means, stds = [], []
            for p in parts:
                f = float(fill_parts[p][0])
                mean = (d["sum"][p] + missing * f) / n
                var = max((d["sumsq"][p] + missing * f * f) / n - mean * mean, 0.0)
                means.append(float(mean))
                stds.append(float(np.sqrt(var)) or 1.0)
            columns.append(Column(name, "date", fill, parts=parts, means=means, stds=stds))
        else:
            counts = s["counts"]
            distinct = s["distinct"] if counts is None else len(counts)
            values = n - missing
            if (
                counts is None
                or distinct > ORDINAL_MAX
                or (distinct > ONEHOT_MAX and distinct > 0.5 * values)
            ):
                more = "more than " if counts is None else ""
                dropped[name] = f"free text or identifier ({more}{distinct} distinct values)"
                continue
            cats = sorted(counts)
            top = max(counts.values())
            fill = min(
                k for k, c in counts.items() if c == top
            )  # pandas' mode: the smallest of the most frequent
            enc = "onehot" if len(cats) <= ONEHOT_MAX else "ordinal"
            columns.append(Column(name, "categorical", fill, categories=cats, encoding=enc))
    for name, why in dropped.items():
        warnings.warn(f"column {name!r} dropped: {why}", stacklevel=3)
    if not columns:
        raise DataError(
            "no usable feature columns after preprocessing: "
            + "; ".join(f"{k}: {v}" for k, v in dropped.items())
        )
    return Preprocessor(columns, dropped, str(target), task, classes, None, None)


def probe_rows(files: FileSet) -> pd.DataFrame:
    """The first block of the first file (a few thousand rows at most)."""
    from automodel.data._files import _read_positioned

    schema = read_schema(files) if files.format == "csv" else None
    for table in _read_positioned(files.subset([0]), 0, None, schema):
        return table.slice(0, 2000).to_pandas()
    return pd.DataFrame(columns=[f.name for f in read_schema(files)])


def looks_like_dates(values: pd.Series) -> bool:
    from automodel.data._preprocess import _looks_like_dates

    return _looks_like_dates(values.dropna().astype(str))
