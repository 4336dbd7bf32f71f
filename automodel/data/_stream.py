"""Streamed data: the driver holds plans, statistics and a sample, never the table.

Files are read by Ray Data tasks on the cluster (``_files.read_files``). One pass computes, per
block and then merged on the driver, everything the preprocessor and the task need (counts,
sums, category counts, missing counts, the target's values) and draws a sample for the search;
``finalize`` turns the merged statistics into the same ``Preprocessor`` (and preprocess.json)
that the in-memory path fits. Rows go to train/val/test by a hash of a row key (``data.key``,
else the file's name and the row's position in it): stable across reruns, cluster sizes and
file order, with no shuffle on the driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automodel.data._files import FILE_COLUMN, ROW_COLUMN, FileSet, read_files, read_schema, reading
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
from automodel.errors import DataError, SpecError

STREAM_BYTES = 256 * 2**20  # one file above this streams (stream: auto)
TRAIN, VAL, TEST = 0, 1, 2
SPLITS = ("train", "val", "test")
SPLIT_COLUMN = "__split"
MAX_TARGET_VALUES = 10_000  # distinct target values kept per block; more is a regression target
MAX_CATEGORIES = 2 * ORDINAL_MAX  # distinct values counted per block; more is an identifier
_SALT_SAMPLE = np.uint64(0x5DEECE66D)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@contextlib.contextmanager
def quiet_ray_data() -> Iterator[None]:
    """Ray Data's per-operator progress log off while our own progress lines (rows, files,
    seconds) report the pass; restored afterwards."""
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    bars, level = ctx.enable_progress_bars, logger.level
    ctx.enable_progress_bars = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ctx.enable_progress_bars = bars
        logger.setLevel(level)


# ---- the row key hash ---------------------------------------------------------------------------
def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijective, well-spread 64-bit mix (wraps, by design)."""
    h = h.astype(np.uint64, copy=True)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def _name_hash(name: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.md5(name.encode()).digest()[:8], "little"))


def row_hash(frame: pd.DataFrame, key: str | None, seed: int) -> np.ndarray:
    """A uint64 per row from its key: ``key``'s value, else (file name, row position)."""
    if key is not None:
        s = frame[key]
        if pd.api.types.is_float_dtype(s) and np.allclose(s.dropna(), np.round(s.dropna())):
            s = s.astype("Int64")  # 5 and 5.0 are one key (CSV widens integers to floats)
        base = pd.util.hash_array(s.astype(str).to_numpy(dtype=object))
    else:
        names = frame[FILE_COLUMN].to_numpy()
        uniq, inv = np.unique(names, return_inverse=True)
        per_file = np.array([_name_hash(str(n)) for n in uniq], dtype=np.uint64)[inv]
        base = per_file ^ _mix(frame[ROW_COLUMN].to_numpy().astype(np.uint64))
    return _mix(base.astype(np.uint64) ^ (np.uint64(seed) * _GOLDEN))


def _uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def assign_splits(h: np.ndarray, test_size: float, val_size: float) -> np.ndarray:
    """TRAIN / VAL / TEST per row from its hash: ``test_size`` of all rows test, ``val_size`` of
    the rest validation."""
    u = _uniform(h)
    split = np.full(len(u), TRAIN, dtype=np.int8)
    split[u < test_size + (1 - test_size) * val_size] = VAL
    split[u < test_size] = TEST
    return split


# ---- what the workers need: a picklable description of the streamed splits ---------------------
@dataclass(frozen=True)
class StreamSource:
    """The streamed splits: which files, how rows map to splits and how targets encode.

    Small and picklable: the final fit ships it to every Ray Train worker, which reads its own
    files with it (see ``automodel.train._data``).
    """

    files: FileSet
    target: str
    task: str
    classes: list | None
    key: str | None
    seed: int
    test_size: float
    val_size: float
    counts: dict[str, int]  # rows with a target per split
    file_rows: tuple[int, ...]  # rows (with and without a target) per file, in files order
    file_train: tuple[int, ...]  # training rows per file
    file_val: tuple[int, ...]  # validation rows per file
    search_rows: int  # training rows in the search's sample

    def split_of(self, frame: pd.DataFrame) -> np.ndarray:
        return assign_splits(row_hash(frame, self.key, self.seed), self.test_size, self.val_size)

    def encode(
        self, frame: pd.DataFrame, prep: Preprocessor, split: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X float32, y, global row id) of ``frame``'s rows in ``split`` that have a target."""
        keep = (self.split_of(frame) == split) & frame[self.target].notna().to_numpy()
        rows = frame[keep]
        offsets = dict(zip(self.files.names, np.concatenate([[0], np.cumsum(self.file_rows)[:-1]])))
        ids = rows[ROW_COLUMN].to_numpy(np.int64) + rows[FILE_COLUMN].map(offsets).to_numpy(
            np.int64
        )
        return prep.transform(rows), self.encode_target(rows[self.target]), ids

    def encode_target(self, y: pd.Series) -> np.ndarray:
        if self.task == "classification":
            codes = pd.Index(self.classes).get_indexer(y)
            if (codes < 0).any():
                raise DataError(
                    f"data.target: value {y[codes < 0].iloc[0]!r} is not one of the classes {self.classes}"
                )
            return codes.astype(np.int64)
        return y.to_numpy(dtype=np.float32)

    def worker_files(self, world: int) -> list[list[int]]:
        """Files per training worker, balanced by training rows (largest first to the lightest
        worker): each file is read by exactly one worker."""
        shares: list[list[int]] = [[] for _ in range(world)]
        load = [0] * world
        for i in sorted(range(len(self.file_train)), key=lambda i: (-self.file_train[i], i)):
            w = min(range(world), key=lambda w: (load[w], w))
            shares[w].append(i)
            load[w] += self.file_train[i]
        return [sorted(s) for s in shares]

    def predictions(
        self, prep: Preprocessor, predict: Callable[[np.ndarray], np.ndarray], split: int = TEST
    ):
        """(y, raw model output) over every row of ``split``, computed by Ray Data tasks on the
        cluster; only targets and outputs come back to the driver."""
        stream = self

        def score(batch: pd.DataFrame) -> dict:
            X, y, _ = stream.encode(batch, prep, split)
            raw = predict(X) if len(X) else np.zeros((0, 1), np.float32)
            raw = np.asarray(raw, dtype=np.float32).reshape(len(X), -1)
            return {
                "y": [y.tobytes()],
                "raw": [raw.tobytes()],
                "width": [raw.shape[1]],
                "n": [len(X)],
            }

        ds = read_files(self.files, positions=True).map_batches(
            score, batch_format="pandas", batch_size=None
        )
        ys, raws = [], []
        with reading(self.files), quiet_ray_data():
            for part in ds.iter_rows():
                if part["n"]:
                    ydt = np.int64 if self.task == "classification" else np.float32
                    ys.append(np.frombuffer(part["y"], dtype=ydt))
                    raws.append(
                        np.frombuffer(part["raw"], dtype=np.float32).reshape(
                            part["n"], part["width"]
                        )
                    )
        if not ys:
            raise DataError(f"data: no {SPLITS[split]} rows to score")
        return np.concatenate(ys), np.concatenate(raws)


def stream_files(spec: Any) -> FileSet | None:
    """The file set to stream for ``spec`` (a DataSpec), or None for the in-memory path:
    builtin and synthetic sources, ``stream: off``, and one file under 256 MB."""
    from automodel.data._files import is_file_source, resolve_files

    if spec.stream == "off" or not is_file_source(spec.source):
        return None
    files = resolve_files(spec.source)
    if spec.stream == "on" or files.multi or files.total_bytes > STREAM_BYTES:
        return files
    return None


# ---- one pass: per-block partial statistics, merged on the driver ------------------------------
@dataclass
class _Plan:
    target: str
    key: str | None
    seed: int
    test_size: float
    val_size: float
    kinds: dict[str, str]  # feature column -> numeric | categorical | date | textdate | null
    sample_frac: tuple[float, float, float]  # per split


def _kinds(schema, exclude: set[str]) -> dict[str, str]:
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


def _partial(frame: pd.DataFrame, plan: _Plan) -> dict:
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
    u = _uniform(_mix(h ^ _SALT_SAMPLE))
    frac = np.asarray(plan.sample_frac)[split]
    pick = has_target & (u < frac)
    sample = frame[pick].drop(columns=[c for c in (FILE_COLUMN,) if c in frame]).copy()
    sample[SPLIT_COLUMN] = split[pick]
    sample["__u"] = u[pick]
    buf = io.BytesIO()
    sample.reset_index(drop=True).to_parquet(buf)
    return {"stats": [json.dumps(out)], "sample": [buf.getvalue()]}


def _merge(parts: list[dict]) -> dict:
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
def _task(target: dict, n: int) -> str:
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


def _classes(target: dict) -> list:
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
            if distinct > ONEHOT_MAX and looks and _looks_like_dates_sample(sample_train[name]):
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


def _probe(files: FileSet) -> pd.DataFrame:
    """The first block of the first file (a few thousand rows at most)."""
    from automodel.data._files import _read_positioned

    schema = read_schema(files) if files.format == "csv" else None
    for table in _read_positioned(files.subset([0]), 0, None, schema):
        return table.slice(0, 2000).to_pandas()
    return pd.DataFrame(columns=[f.name for f in read_schema(files)])


def _looks_like_dates_sample(values: pd.Series) -> bool:
    from automodel.data._preprocess import _looks_like_dates

    return _looks_like_dates(values.dropna().astype(str))


# ---- the streamed load ------------------------------------------------------------------------
@dataclass
class StreamedLoad:
    """What one pass over the files gives: the preprocessor, the stream, a sample for the search."""

    preprocessor: Preprocessor
    stream: StreamSource
    sample: pd.DataFrame  # with SPLIT_COLUMN; internal columns dropped except ROW_COLUMN
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0


def scan(
    spec: Any,
    files: FileSet,
    sample_rows: int,
    progress: Callable[[str, str], None] | None = None,
) -> StreamedLoad:
    """One parallel pass over ``files``: split, fit the preprocessor, draw the search's sample.

    Args:
        spec: the DataSpec (target, task, key, seed, split sizes).
        files: the resolved file set.
        sample_rows: training rows the sample should hold (validation and test: a quarter each).
        progress: called with ("data", message) every few seconds while the pass runs.
    """
    from automodel.data._files import parquet_rows

    start = time.time()
    schema = read_schema(files)
    names = [f.name for f in schema]
    target = spec.target or names[-1]
    if target not in names:
        raise SpecError(
            "data.target", f"column {target!r} not in the data; columns: {', '.join(names[:20])}"
        )
    if spec.key is not None and spec.key not in names:
        raise SpecError(
            "data.key", f"column {spec.key!r} not in the data; columns: {', '.join(names[:20])}"
        )
    exclude = {target, FILE_COLUMN, ROW_COLUMN, *([spec.key] if spec.key else [])}
    kinds = _kinds(schema, exclude)
    probe = _probe(files)
    for (
        name,
        kind,
    ) in kinds.items():  # parse dates per block only where the first rows look like dates
        if kind == "textdate" and not _looks_like_dates_sample(probe[name]):
            kinds[name] = "categorical"
    # Sample fractions from the row count in the Parquet footers (no data read); CSV: count first.
    rows = parquet_rows(files)
    if rows is None:
        with reading(files):
            rows = read_files(files).count()
    expect = [
        rows * (1 - spec.test_size) * (1 - spec.val_size),
        rows * (1 - spec.test_size) * spec.val_size,
        rows * spec.test_size,
    ]
    want = [sample_rows, sample_rows / 4, sample_rows / 4]
    frac = tuple(float(min(1.0, w / max(e, 1.0) * 1.05)) for w, e in zip(want, expect))
    plan = _Plan(target, spec.key, spec.seed, spec.test_size, spec.val_size, kinds, frac)

    ds = read_files(files, positions=True).map_batches(
        _partial, fn_kwargs={"plan": plan}, batch_format="pandas", batch_size=None
    )
    parts, samples, seen_rows, seen_files, last = [], [], 0, set(), time.time()
    with reading(files), quiet_ray_data():
        for row in ds.iter_rows():
            p = json.loads(row["stats"])
            parts.append(p)
            samples.append(pd.read_parquet(io.BytesIO(row["sample"])))
            seen_rows += p["rows"]
            seen_files.update(p["files"])
            if progress is not None and time.time() - last > 5:
                last = time.time()
                progress(
                    "data",
                    f"read {seen_rows:,} of {rows:,} rows ({len(seen_files)}/{len(files)} files, "
                    f"{time.time() - start:.0f}s)",
                )
    stats = _merge(parts)
    sample = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()
    # The fractions overshoot a little; keep the sample's size exact by the sample hash order.
    kept = []
    for s, w in zip((TRAIN, VAL, TEST), want):
        part = sample[sample[SPLIT_COLUMN] == s].sort_values("__u", kind="stable").head(int(w))
        kept.append(part)
    sample = pd.concat(kept, ignore_index=True).drop(columns="__u")
    n_kept = sum(stats["splits"])
    if n_kept < 10:
        raise DataError(f"data: need at least 10 rows with a target, got {n_kept}")
    if stats["no_target"]:
        warnings.warn(
            f"dropped {stats['no_target']} row(s) with a missing target {target!r}", stacklevel=2
        )
    task = spec.task or _task(stats["target"], n_kept)
    classes = None
    if task == "classification":
        if stats["target"]["overflow"]:
            raise DataError(
                f"data.target: classification needs few classes, got more than {MAX_TARGET_VALUES}"
            )
        classes = _classes(stats["target"])
        if len(classes) < 2:
            raise DataError(f"data.target: classification needs at least 2 classes, got {classes}")
    elif not stats["target"]["numeric"]:
        raise SpecError(
            "data.task", f"regression needs a numeric target; {target!r} is not numeric"
        )
    train_sample = sample[sample[SPLIT_COLUMN] == TRAIN]
    dropped = {spec.key: "row key (data.key)"} if spec.key else {}
    prep = finalize(stats, train_sample, kinds, target, task, classes, dropped)
    stream = StreamSource(
        files=files,
        target=target,
        task=task,
        classes=classes,
        key=spec.key,
        seed=spec.seed,
        test_size=spec.test_size,
        val_size=spec.val_size,
        counts=dict(zip(SPLITS, stats["splits"])),
        file_rows=tuple(stats["files"].get(n, [0, 0, 0])[0] for n in files.names),
        file_train=tuple(stats["files"].get(n, [0, 0, 0])[1] for n in files.names),
        file_val=tuple(stats["files"].get(n, [0, 0, 0])[2] for n in files.names),
        search_rows=int((sample[SPLIT_COLUMN] == TRAIN).sum()),
    )
    seconds = time.time() - start
    if progress is not None:
        progress(
            "data",
            f"read {stats['rows']:,} rows in {len(files)} file(s), {files.total_bytes / 2**20:.0f} MB, "
            f"in {seconds:.1f}s; sample of {stream.search_rows:,} training rows for the search",
        )
    return StreamedLoad(prep, stream, sample, stats, seconds)


def batches_from_files(
    stream: StreamSource,
    indices: list[int],
    prep: Preprocessor,
    split: int = TRAIN,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(X, y, row ids) of ``split`` from the files at ``indices``, one Parquet row group (or CSV
    block) at a time: what one training worker reads, straight from storage."""
    from automodel.data._files import _read_positioned

    schema = read_schema(stream.files) if stream.files.format == "csv" else None
    for i in indices:
        one = stream.files.subset([i])
        for table in _read_positioned(one, 0, None, schema):
            frame = table.to_pandas()
            X, y, ids = stream.encode(frame, prep, split)
            if len(X):
                yield X, y, ids


__all__ = [
    "STREAM_BYTES",
    "StreamSource",
    "StreamedLoad",
    "assign_splits",
    "batches_from_files",
    "finalize",
    "row_hash",
    "scan",
    "stream_files",
]
