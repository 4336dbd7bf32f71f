"""The batch encoder against serving's own encoder, value for value (no Ray)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from automodel.predict._encode import BatchEncoder
from automodel.serve._predictor import Predictor
from tests.predict.conftest import BAD, ID


def _records(frame):
    # JSON's view of the rows: NaN travels as null.
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def test_numeric_rows_encode_bit_for_bit_as_serving(digits_predict):
    artifact, frame = digits_predict
    enc = BatchEncoder(artifact.preprocessor).encode(pa.Table.from_pandas(frame))
    bad = sorted(BAD)
    assert np.flatnonzero(~enc.good).tolist() == bad
    for row, (col, value) in BAD.items():
        assert enc.reasons[row] == f"column {col!r}: non-finite value ({value})"
    good = frame.drop(index=bad).drop(columns=[ID])
    served = Predictor(artifact).encode(good.to_numpy().tolist(), strict=True)
    assert enc.X.dtype == np.float32 and enc.X.shape == served.shape
    assert np.array_equal(enc.X, served)


def test_mixed_rows_encode_as_serving(mixed_predict):
    artifact, frame = mixed_predict
    enc = BatchEncoder(artifact.preprocessor).encode(pa.Table.from_pandas(frame))
    assert enc.good.all()
    served = Predictor(artifact).encode(_records(frame), strict=True)
    assert np.array_equal(enc.X, served)


def test_csv_text_out_of_range_and_missing_values(digits_predict):
    artifact, frame = digits_predict
    prep = artifact.preprocessor
    rows = frame.drop(columns=[ID]).head(6).astype(object)
    text = rows.astype(str)  # a CSV column that holds one word is read as text
    col = prep.input_columns[10]
    text.loc[1, col] = "abc"
    text.loc[2, col] = ""  # missing: imputed
    text.loc[3, col] = "1.5"
    # A value past float32's range once scaled, in a column the model uses.
    used = next(c for c in prep.columns if c.std > 0 and c.name != col)
    text.loc[4, used.name] = "1e39"
    table = pa.table({c: pa.array(text[c].tolist(), pa.string()) for c in text.columns})
    table = table.set_column(
        table.schema.get_field_index(col),
        col,
        pa.array([None if v == "" else v for v in text[col]]),
    )
    enc = BatchEncoder(prep).encode(table)
    assert enc.good.tolist() == [True, False, True, True, False, True]
    assert enc.reasons[1] == f"column {col!r}: expected a number, got 'abc'"
    assert enc.reasons[4].startswith(f"column {used.name!r}: value 1e+39 is out of range")
    expected = rows.drop(index=[1, 4]).astype(float)
    expected.loc[2, col] = np.nan
    expected.loc[3, col] = 1.5
    served = Predictor(artifact).encode(
        [[None if math.isnan(v) else v for v in r] for r in expected.to_numpy().tolist()],
        strict=True,
    )
    assert np.array_equal(enc.X, served)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_serving_refuses_what_the_batch_encoder_refuses(digits_predict, value):
    from automodel.errors import DataError

    artifact, frame = digits_predict
    row = frame.drop(columns=[ID]).head(1).copy()
    row.iloc[0, 5] = value
    with pytest.raises(DataError, match="non-finite"):
        Predictor(artifact).encode(row.to_numpy().tolist(), strict=True)
    assert not BatchEncoder(artifact.preprocessor).encode(pa.Table.from_pandas(row)).good[0]
