"""Artifacts and input files for batch prediction tests, built in-process in seconds (no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automodel.spec import Spec

ID = "row_id"
# Two rows serving would refuse: JSON cannot even carry them, the encoder says why.
BAD = {7: ("pixel_0_3", np.inf), 250: ("pixel_4_4", -np.inf)}


@pytest.fixture(scope="session")
def digits_predict(tmp_path_factory, digits):
    """A logistic digits artifact and its raw test rows with an id column, two holding ±inf."""
    from tests.serve.conftest import make_artifact

    root = tmp_path_factory.mktemp("predict")
    artifact, _ = make_artifact(
        root / "artifact", Spec(name="digits"), "logistic", {"C": 1.0}, dataset=digits
    )
    frame = digits.raw_test.drop(columns=[digits.preprocessor.target]).reset_index(drop=True)
    frame.insert(0, ID, np.arange(len(frame), dtype=np.int64) * 3 + 100_000)
    for row, (col, value) in BAD.items():
        frame.loc[row, col] = value
    return artifact, frame


def write_parts(frame: pd.DataFrame, folder: Path, parts: int = 3) -> Path:
    """``frame`` as ``parts`` Parquet files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, idx in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def mixed_predict(tmp_path_factory):
    """Categorical, numeric and missing values: the encoder's pandas path, and its raw rows."""
    from tests.serve.conftest import churn_frame, make_artifact

    frame = churn_frame()
    root = tmp_path_factory.mktemp("predict-mixed")
    csv = root / "churn.csv"
    frame.to_csv(csv, index=False)
    spec = Spec(name="churn", data={"source": str(csv), "target": "churn"})
    artifact, _ = make_artifact(root / "artifact", spec, "logistic")
    return artifact, frame.drop(columns=["churn"])
