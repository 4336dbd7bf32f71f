"""Streamed files: the distributed preprocessor fit equals the in-memory one, and a row's split
depends on the row alone (not on workers, file order, file layout or where the files live)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from automodel.data import Preprocessor, load_dataset, stream_files
from automodel.data._files import FILE_COLUMN, ROW_COLUMN
from automodel.data._rowsplit import TEST, TRAIN, assign_splits, row_hash
from automodel.spec import DataSpec
from automodel.train._data import FileShard, worker_stream

pytestmark = pytest.mark.ray


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n) * 7 + 1000,
            "x": rng.normal(3.0, 2.0, n),
            "count": rng.integers(0, 50, n).astype(float),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "city": rng.choice([f"city{i:02d}" for i in range(30)], n),  # > 20 categories: ordinal
            "signup": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
            "empty": np.nan,
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.05, "plan"] = None
    frame.loc[rng.random(n) < 0.05, "signup"] = pd.NaT
    frame["churn"] = np.where(frame["x"].fillna(3) + (frame["plan"] == "pro") > 3.5, "yes", "no")
    frame.loc[rng.random(n) < 0.02, "churn"] = None
    return frame


def _write(frame: pd.DataFrame, folder, files: int) -> None:
    folder.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[idx].reset_index(drop=True).to_parquet(folder / f"part-{i}.parquet")


def _spec(source, **kw) -> DataSpec:
    return DataSpec(source=source, target="churn", **kw)


def _streamed(spec: DataSpec, sample_rows: int = 100_000):
    with pytest.warns(UserWarning):  # the all-missing column, rows without a target
        return load_dataset(spec, files=stream_files(spec), sample_rows=sample_rows)


def _train_rows(d, world: int) -> set[bytes]:
    """Every training row (encoded) that the ``world`` workers' FileShards read, as bytes."""
    stream = worker_stream(d, world)
    out, yielded = [], []
    for rank in range(world):
        n = 0
        for chunk in FileShard(stream, rank, world, seed=0).iter_batches(batch_size=512):
            out += [r.tobytes() for r in chunk["X"][~chunk["pad"]]]
            n += len(chunk["X"])
        yielded.append(n)
    assert yielded == [stream.rows] * world  # equal rows, so equal DDP steps, on every worker
    assert len(out) == len(set(out)) == d.stream.counts["train"]  # disjoint, and the whole split
    return set(out)


def test_distributed_fit_equals_in_memory_fit(tmp_path, ray_cluster):
    frame = _table()
    _write(frame, tmp_path / "t", 4)
    d = _streamed(_spec(str(tmp_path / "t")))
    assert d.stream is not None and len(d.stream.files) == 4

    # the in-memory path on the same training rows: the files in pandas, the same row-key split
    parts = []
    for i in range(4):
        part = pq.read_table(tmp_path / "t" / f"part-{i}.parquet").to_pandas()
        part[FILE_COLUMN], part[ROW_COLUMN] = f"part-{i}.parquet", np.arange(len(part))
        parts.append(part)
    whole = pd.concat(parts, ignore_index=True)
    split = assign_splits(row_hash(whole, None, 0), 0.2, 0.15)
    train = whole[(split == TRAIN) & whole["churn"].notna()].drop(columns=[FILE_COLUMN, ROW_COLUMN])
    with pytest.warns(UserWarning, match="empty"):
        ref = Preprocessor.fit(train, "churn", "classification", ["no", "yes"])

    got = d.preprocessor
    assert got.dropped.keys() == ref.dropped.keys() == {"empty"}
    assert [c.name for c in got.columns] == [c.name for c in ref.columns]
    for a, b in zip(got.columns, ref.columns):
        assert (a.kind, a.encoding, a.categories, a.parts) == (
            b.kind,
            b.encoding,
            b.categories,
            b.parts,
        ), a.name
        assert a.fill == pytest.approx(b.fill) if a.kind == "numeric" else a.fill == b.fill, a.name
        assert a.mean == pytest.approx(b.mean, rel=1e-9) and a.std == pytest.approx(
            b.std, rel=1e-9
        ), a.name
        assert a.means == pytest.approx(b.means, rel=1e-9) and a.stds == pytest.approx(
            b.stds, rel=1e-9
        ), a.name
    assert d.classes == ["no", "yes"] and d.task == "classification"
    assert d.stream.counts == {
        "train": len(train),
        "val": int(((split == 1) & whole["churn"].notna()).sum()),
        "test": int(((split == TEST) & whole["churn"].notna()).sum()),
    }
    # the same preprocess.json: identical encodings of the raw test rows
    np.testing.assert_allclose(
        got.transform(d.raw_test), ref.transform(d.raw_test), rtol=1e-6, atol=1e-6
    )


def test_split_is_stable_across_workers_file_order_and_location(tmp_path, ray_cluster):
    frame = _table(2000, seed=1)
    _write(frame, tmp_path / "a", 3)
    d = _streamed(_spec(str(tmp_path / "a")))
    one, two = _train_rows(d, 1), _train_rows(d, 2)
    assert one == two  # 1 or 2 training workers: the same training rows

    # the files listed in another order, from another folder: the same splits, row by row
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    listed = [str(tmp_path / "moved" / f"part-{i}.parquet") for i in (2, 0, 1)]
    moved = _streamed(_spec(listed))
    assert moved.stream.counts == d.stream.counts
    assert _train_rows(moved, 2) == one
    assert moved.raw_test.equals(d.raw_test)


def test_split_by_key_ignores_the_file_layout(tmp_path, ray_cluster):
    frame = _table(2000, seed=2)
    _write(frame, tmp_path / "three", 3)
    _write(frame.sample(frac=1.0, random_state=0), tmp_path / "five", 5)  # rows shuffled, 5 files
    a = _streamed(_spec(str(tmp_path / "three"), key="id"))
    b = _streamed(_spec(str(tmp_path / "five"), key="id"))
    assert a.stream.counts == b.stream.counts
    assert "id" in a.preprocessor.dropped  # the key is not a feature
    assert _train_rows(a, 2) == _train_rows(b, 1)
    test_ids = {int(v) for v in a.raw_test["id"]}
    assert test_ids == {int(v) for v in b.raw_test["id"]}


def test_one_file_is_shared_by_rows_between_workers(tmp_path, ray_cluster):
    _write(_table(1500, seed=3), tmp_path / "one", 1)
    d = _streamed(_spec(str(tmp_path / "one"), stream="on"))
    assert len(d.stream.files) == 1 and worker_stream(d, 2).by_rows
    assert _train_rows(d, 2) == _train_rows(d, 1)
