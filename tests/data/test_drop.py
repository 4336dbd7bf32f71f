"""data.drop, the near-copy warning and messages that name the column a spec means."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from automodel.data import load_dataset
from automodel.errors import SpecError
from automodel.spec import DataSpec, Spec


@pytest.fixture(scope="module")
def wage_csv(tmp_path_factory):
    """Wage-like data: the target ``wage`` and ``logwage``, its log, beside honest features."""
    rng = np.random.default_rng(3)
    n = 600
    age = rng.integers(18, 80, n)
    education = rng.choice(["1. < HS", "2. HS", "3. College", "4. Advanced"], n)
    wage = np.exp(
        3.8
        + 0.008 * age
        + 0.2 * (np.char.find(education.astype(str), "Adv") >= 0)
        + rng.normal(0, 0.3, n)
    )
    frame = pd.DataFrame(
        {
            "year": rng.integers(2003, 2010, n),
            "age": age,
            "education": education,
            "health": rng.choice(["1. <=Good", "2. >=Very Good"], n),
            "logwage": np.log(wage),
            "wage": wage.round(2),
        }
    )
    path = tmp_path_factory.mktemp("wage") / "wage.csv"
    frame.to_csv(path, index=False)
    return path


def _near_copy_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "almost determines" in str(w.message)]


def test_near_copy_warning_names_the_column_and_the_key(wage_csv):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_dataset(DataSpec(source=str(wage_csv), target="wage"))
    found = _near_copy_warnings(record)
    assert len(found) == 1, found  # logwage, and no honest column
    assert "column 'logwage' almost determines the target 'wage'" in found[0]
    assert "`data.drop: [logwage]`" in found[0]


def test_near_copy_warning_on_a_class_target(wage_csv):
    frame = pd.read_csv(wage_csv)
    frame["high"] = np.where(frame["wage"] > frame["wage"].median(), "high", "low")
    frame["band"] = frame["high"].map({"high": "B", "low": "A"})  # the class, renamed
    path = wage_csv.parent / "wage_class.csv"
    frame.drop(columns=["wage", "logwage"]).to_csv(path, index=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_dataset(DataSpec(source=str(path), target="high"))
    found = _near_copy_warnings(record)
    assert len(found) == 1 and "'band'" in found[0], found


def test_dropped_column_is_out_of_model_preprocessor_and_served_schema(wage_csv, tmp_path):
    from automodel.serve._openapi import openapi_schema
    from automodel.serve._predictor import Predictor
    from tests.serve.conftest import make_artifact

    spec = Spec(name="wage", data={"source": str(wage_csv), "target": "wage", "drop": ["logwage"]})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        data = load_dataset(spec.data)
    assert not _near_copy_warnings(record)  # dropped: no longer a copy the model could read
    assert "logwage" not in data.preprocessor.input_columns
    assert "logwage" not in data.raw_test.columns
    assert data.summary["columns"] == 4 and data.n_features == 2 + 4 + 2  # no logwage feature

    artifact, _ = make_artifact(tmp_path / "artifact", spec, "logistic", dataset=data)
    prep = json.loads((artifact.path / "preprocess.json").read_text())
    assert [c["name"] for c in prep["columns"]] == ["year", "age", "education", "health"]
    assert prep["dropped"] == {"logwage": "left out by the spec (data.drop)"}
    card = json.loads((artifact.path / "card.json").read_text())
    assert "logwage" not in card["features"]
    assert card["data"]["spec"]["drop"] == ["logwage"]  # recorded in the card
    assert "logwage" in card["data"]["summary"]["dropped_columns"]

    predictor = Predictor(artifact.path)
    record = openapi_schema(predictor, "wage")["components"]["schemas"]
    rows = json.dumps(record)
    assert '"required": ["year", "age", "education", "health"]' in rows
    # a row of the original file (logwage included) is still answered: the column is ignored
    raw = pd.read_csv(wage_csv).drop(columns=["wage"]).head(3).to_dict("records")
    with_copy, _ = predictor.predict(raw)
    without, _ = predictor.predict([{k: v for k, v in r.items() if k != "logwage"} for r in raw])
    assert np.allclose(with_copy, without)


def test_drop_names_a_missing_column_with_the_nearest(wage_csv):
    with pytest.raises(SpecError) as info:
        load_dataset(DataSpec(source=str(wage_csv), target="wage", drop=["log_wage"]))
    message = str(info.value)
    assert message.startswith("spec error: data.drop: column 'log_wage' not in the data")
    assert "did you mean 'logwage'?" in message and "columns: year, age" in message


def test_target_that_differs_in_case_names_the_column(wage_csv):
    with pytest.raises(SpecError) as info:
        load_dataset(DataSpec(source=str(wage_csv), target="Wage"))
    assert "data.target: column 'Wage' not in the data (did you mean 'wage'?)" in str(info.value)


@pytest.mark.ray
def test_streamed_files_drop_and_warn_too(wage_csv, tmp_path, ray_cluster):
    from automodel.data import stream_files

    folder = tmp_path / "wage"
    folder.mkdir()
    frame = pd.read_csv(wage_csv)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 2)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)

    spec = DataSpec(source=str(folder), target="wage")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_dataset(spec, files=stream_files(spec))
    found = _near_copy_warnings(record)
    assert len(found) == 1 and "`data.drop: [logwage]`" in found[0], found

    spec = DataSpec(source=str(folder), target="wage", drop=["logwage"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        data = load_dataset(spec, files=stream_files(spec))
    assert not _near_copy_warnings(record)
    assert data.stream is not None
    assert data.preprocessor.input_columns == ["year", "age", "education", "health"]
    assert data.preprocessor.dropped == {"logwage": "left out by the spec (data.drop)"}
    assert "logwage" not in data.raw_test.columns

    with pytest.raises(SpecError, match=r"data.drop: column 'logwag' not in the data \(did you"):
        bad = DataSpec(source=str(folder), target="wage", drop=["logwag"])
        load_dataset(bad, files=stream_files(bad))
