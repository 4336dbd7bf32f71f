"""Arrow batches -> the float32 matrix a model takes, row by row refusing what serving refuses.

Serving (``automodel/serve/_predictor.py`` and ``_server.py``) refuses a whole request when one
value cannot be encoded; offline, the same rules apply to each row on its own, so a bad row is set
aside with its reason and the rest of the batch scores. The rules:

- a numeric column takes numbers, booleans (1 and 0) and nulls (imputed); text that is not a
  number (a CSV column holding ``"abc"``) is refused: ``column 'x': expected a number, got 'abc'``;
- ±Infinity is refused: ``column 'x': non-finite value (inf)``;
- a value that leaves float32's range once scaled is refused (serving: "a value is out of
  range"), checked only on the features the model keeps, as serving does.

Good rows encode with the same float64 maths as ``Preprocessor.transform`` (``(x - mean) / std``,
then float32), so a row scores the same offline and online; ``tests/predict`` checks it against a
running server. Categorical columns go through ``Preprocessor.transform`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from automodel.data import Preprocessor
from automodel.errors import DataError

# What counts as a missing value in a text column (pyarrow's CSV null tokens turn most into
# nulls already; these are the ones a hand-written file may still carry).
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none"}
# The reason a row is refused, null for a good row: set by the read (a value its file could not
# give in the type the model takes) and by the encoder, then written to errors/ as ``error``.
ERROR_COLUMN = "__automodel_error"


@dataclass
class Encoded:
    """One batch, encoded: ``X`` holds the good rows only, in order.

    Attributes:
        X: float32 matrix of the rows where ``good`` is True.
        good: bool mask over the batch's rows.
        reasons: the reason for each bad row (None for good rows), as an object array.
    """

    X: np.ndarray
    good: np.ndarray
    reasons: np.ndarray

    @property
    def n_bad(self) -> int:
        return int((~self.good).sum())


def numeric_input_type(t: pa.DataType) -> bool:
    """Types a numeric feature column may have in a file (text is parsed value by value)."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
    )


def parse_numbers(col: pa.Array | pa.ChunkedArray, name: str) -> tuple[np.ndarray, dict]:
    """Text as float64 (missing text as NaN), and ``{row: reason}`` for text that is no number."""
    try:  # the common case: every value is a number or missing
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), {}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    refused = {}
    for r in np.flatnonzero(np.isnan(values)):
        v = text.iat[r]
        if v is None or str(v).strip().lower() in _MISSING_TEXT:
            continue
        v = str(v)
        shown = repr(v) if len(v) <= 40 else repr(v[:37] + "...")
        refused[int(r)] = f"column {name!r}: expected a number, got {shown}"
    return values, refused


class BatchEncoder:
    """Encodes Arrow tables with an artifact's preprocessor (``preprocess.json``)."""

    def __init__(self, prep: Preprocessor):
        self.prep = prep
        self.columns = prep.input_columns
        self.numeric_only = all(c.kind == "numeric" for c in prep.columns)
        selected = None if prep.selected is None else set(prep.selected)
        # Each numeric column's position among the encoded features: out-of-range values count
        # only where the model keeps that feature, as in serving's check of the encoded matrix.
        self.kept: dict[str, bool] = {}
        offset = 0
        for c in prep.columns:
            if c.kind == "numeric":
                self.kept[c.name] = selected is None or offset in selected
            offset += c.width
        numeric = [c for c in prep.columns if c.kind == "numeric"]
        self.numeric_cols = numeric
        self.fill = np.array([c.fill for c in numeric], dtype=np.float64)
        self.mean = np.array([c.mean for c in numeric], dtype=np.float64)
        self.std = np.array([c.std for c in numeric], dtype=np.float64)
        self.selected = None if prep.selected is None else np.asarray(prep.selected, dtype=np.intp)

    def missing(self, names: list[str]) -> list[str]:
        """Input columns absent from ``names`` (a file's columns), in the model's order."""
        have = set(names)
        return [c for c in self.columns if c not in have]

    def encode(self, table: pa.Table) -> Encoded:
        """Encode a batch; a row's reason is the first refused value, in column order."""
        n = table.num_rows
        reasons = np.full(n, None, dtype=object)
        bad = np.zeros(n, dtype=bool)
        if ERROR_COLUMN in table.column_names:  # refused by the read already: keep its reason
            read = table.column(ERROR_COLUMN).to_numpy(zero_copy_only=False)
            bad = np.array([r is not None for r in read], dtype=bool)
            reasons[bad] = read[bad]
        numeric, raw = [], {}
        for j, c in enumerate(self.numeric_cols):
            v = self._numbers(table, c.name, reasons, bad)
            if not self.numeric_only:
                raw[c.name] = v
            # ±Infinity: refused in every numeric column, kept by the model or not (serving's
            # pandas path raises on it before any selection).
            inf = np.isinf(v)
            if inf.any():
                self._refuse(
                    inf,
                    reasons,
                    bad,
                    lambda r, v=v, c=c: f"column {c.name!r}: non-finite value ({v[r]})",
                )
            nan = np.isnan(v)
            filled = np.where(nan, self.fill[j], v) if nan.any() else v
            with np.errstate(over="ignore", invalid="ignore"):
                z = ((filled - self.mean[j]) / self.std[j]).astype(np.float32)
            if self.kept[c.name]:
                out = ~np.isfinite(z) & ~inf
                if out.any():
                    self._refuse(
                        out,
                        reasons,
                        bad,
                        lambda r, v=v, c=c: (
                            f"column {c.name!r}: value {float(v[r])!r} is out of range "
                            "(not finite once scaled to float32)"
                        ),
                    )
            numeric.append(z)
        good = ~bad
        if self.numeric_only:
            kept = numeric if self.selected is None else [numeric[i] for i in self.selected]
            X = np.stack(kept, axis=1) if kept else np.zeros((n, 0), np.float32)
            if bad.any():
                X = X[good]
        else:
            X = self._mixed(table, raw, good, reasons)
        return Encoded(np.ascontiguousarray(X, dtype=np.float32), good, reasons)

    @staticmethod
    def _refuse(rows: np.ndarray, reasons: np.ndarray, bad: np.ndarray, why) -> None:
        for r in np.flatnonzero(rows & ~bad):
            reasons[r] = why(r)
            bad[r] = True

    # ---- columns -------------------------------------------------------------------------------
    def _numbers(
        self, table: pa.Table, name: str, reasons: np.ndarray, bad: np.ndarray
    ) -> np.ndarray:
        """One numeric column as float64 (nulls as NaN); text that is not a number is refused."""
        col = table.column(name)
        t = col.type
        if pa.types.is_dictionary(t):
            col, t = col.cast(t.value_type), t.value_type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return self._parse_text(col, name, reasons, bad)
        if not numeric_input_type(t):
            raise DataError(f"input: column {name!r}: expected numbers, the file has {t}")
        # safe=False: int64 beyond 2**53 rounds, as float() would in serving.
        values = pc.cast(col, pa.float64(), safe=False)
        return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    @staticmethod
    def _parse_text(
        col: pa.ChunkedArray, name: str, reasons: np.ndarray, bad: np.ndarray
    ) -> np.ndarray:
        values, refused = parse_numbers(col, name)
        for r, why in refused.items():
            if not bad[r]:
                reasons[r], bad[r] = why, True
        return values

    def _mixed(
        self, table: pa.Table, raw: dict[str, np.ndarray], good: np.ndarray, reasons: np.ndarray
    ) -> np.ndarray:
        """Categorical or date columns present: the good rows through ``Preprocessor.transform``.

        A value that ``transform`` refuses (a date it cannot parse) refuses its row only: the
        batch is then encoded row by row to find which (slow, and only for such batches).
        ``good`` and ``reasons`` are updated in place.
        """
        index = np.flatnonzero(good)
        if not len(index):
            return np.zeros((0, self.prep.n_features), dtype=np.float32)
        frame = {}
        for c in self.prep.columns:
            if c.kind == "numeric":
                frame[c.name] = raw[c.name][index]
            else:
                values = table.column(c.name).take(pa.array(index))
                frame[c.name] = pd.Series(values.to_pylist(), dtype=object)
        frame = pd.DataFrame(frame)
        try:
            return self.prep.transform(frame)
        except DataError:
            pass
        rows = []
        for k, r in enumerate(index):
            try:
                rows.append(self.prep.transform(frame.iloc[[k]]))
            except DataError as exc:
                good[r] = False
                reasons[r] = str(exc)
        if not rows:
            return np.zeros((0, self.prep.n_features), dtype=np.float32)
        return np.concatenate(rows)
