"""Which split a streamed row belongs to: a hash of its key, stable across reruns and clusters.

Rows go to train/val/test by a hash of a row key (``data.key``, else the file's name and the
row's position in it): the same row lands in the same split whatever the cluster size or the
order the files are read in, with no shuffle on the driver.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from automodel.data._files import FILE_COLUMN, ROW_COLUMN

TRAIN, VAL, TEST = 0, 1, 2
SPLITS = ("train", "val", "test")
SPLIT_COLUMN = "__split"
SALT_SAMPLE = np.uint64(0x5DEECE66D)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---- the row key hash ---------------------------------------------------------------------------
def mix_hash(h: np.ndarray) -> np.ndarray:
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
        base = per_file ^ mix_hash(frame[ROW_COLUMN].to_numpy().astype(np.uint64))
    return mix_hash(base.astype(np.uint64) ^ (np.uint64(seed) * _GOLDEN))


def uniform_of(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def assign_splits(h: np.ndarray, test_size: float, val_size: float) -> np.ndarray:
    """TRAIN / VAL / TEST per row from its hash: ``test_size`` of all rows test, ``val_size`` of
    the rest validation."""
    u = uniform_of(h)
    split = np.full(len(u), TRAIN, dtype=np.int8)
    split[u < test_size + (1 - test_size) * val_size] = VAL
    split[u < test_size] = TEST
    return split
