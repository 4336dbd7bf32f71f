"""Sources, task inference, the JSON preprocessor and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automodel.data import Preprocessor, load_dataset
from automodel.errors import DataError
from automodel.spec import DataSpec
from tests.conftest import CONFIGS


@pytest.mark.parametrize(
    "name,task",
    [
        ("digits", "classification"),
        ("breast_cancer", "classification"),
        ("wine", "classification"),
        ("iris", "classification"),
        ("diabetes", "regression"),
    ],
)
def test_builtins(name, task):
    d = load_dataset(DataSpec(source=f"builtin:{name}"))
    assert d.task == task
    assert len(d.X_train) + len(d.X_val) + len(d.X_test) == d.rows
    assert d.X_train.dtype == np.float32


def test_synthetic_any_size():
    d = load_dataset(DataSpec(source="synthetic:classification?rows=3000&features=12&seed=3"))
    assert d.rows == 3000 and d.n_features == 12 and d.task == "classification"
    r = load_dataset(DataSpec(source="synthetic:regression?rows=500&features=4"))
    assert r.task == "regression"


def test_csv_with_categoricals_missing_and_unusable_columns():
    with pytest.warns(UserWarning) as record:
        d = load_dataset(DataSpec(source=str(CONFIGS / "data/customers.csv"), target="churn"))
    messages = " ".join(str(w.message) for w in record)
    assert "signup_date" not in messages  # a date: calendar features, not dropped
    assert "notes" in messages and "free text" in messages
    assert "signup_date.month" in d.preprocessor.feature_names
    assert d.task == "classification" and d.classes == ["no", "yes"]
    assert not np.isnan(d.X_train).any()
    assert "plan=basic" in d.preprocessor.feature_names


def test_stratified_split_keeps_class_balance():
    d = load_dataset(DataSpec(source="builtin:breast_cancer", seed=1))
    shares = [np.mean(y) for y in (d.y_train, d.y_val, d.y_test)]
    assert max(shares) - min(shares) < 0.03


def test_missing_targets_dropped_with_warning():
    with pytest.warns(UserWarning, match="missing target"):
        d = load_dataset(DataSpec(source=str(CONFIGS / "data/housing.csv"), target="price"))
    raw = pd.read_csv(CONFIGS / "data/housing.csv")
    assert d.rows == raw["price"].notna().sum()
    assert d.task == "regression"


def test_preprocessor_json_roundtrip_and_serving_rows(tmp_path):
    d = load_dataset(DataSpec(source=str(CONFIGS / "data/customers.csv"), target="churn"))
    path = tmp_path / "preprocess.json"
    d.preprocessor.save(path)
    again = Preprocessor.load(path)
    raw = d.raw_test.drop(columns=["churn"])
    np.testing.assert_allclose(again.transform(raw), d.X_test, rtol=1e-6)
    # Rows as {column: value} records with an unseen category and a missing value still encode.
    record = raw.iloc[0].to_dict()
    record.update(plan="platinum", age=None)
    record = {k: v for k, v in record.items() if k in again.input_columns}
    out = again.transform([record])
    assert out.shape == (1, d.n_features) and np.isfinite(out).all()
    with pytest.raises(DataError, match="expected a number"):
        again.transform([{**record, "age": "old"}])
    with pytest.raises(DataError, match="missing column"):
        again.transform([{"age": 3}])


def test_unreadable_file_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(DataSpec(source=str(bad)))
