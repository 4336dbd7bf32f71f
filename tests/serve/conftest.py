"""Artifacts for serving tests, made in-process in seconds (no Tune, no Ray Train)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from automodel.data import load_dataset
from automodel.models import get_family
from automodel.pipeline import build_artifact
from automodel.spec import Spec
from automodel.train import TrainedModel


def make_artifact(path: Path, spec: Spec, family: str = "logistic", params: dict | None = None,
                  dataset=None, version: int | None = None):
    """Fit ``family`` on ``spec.data`` in-process and write ``path`` as the pipeline would."""
    data = dataset or load_dataset(spec.data)
    cls = get_family(family)
    model = cls(data.task, data.n_features, data.n_outputs, params, image_shape=data.preprocessor.image_shape,
                max_steps=5).fit(data.X_train, data.y_train)
    trained = TrainedModel(model, family, model.params, {"workers": 1, "use_gpu": False, "epochs": 0,
                                                         "restarts": 0, "wall_s": 0.0})
    artifact = build_artifact(spec, data, trained, path)
    if version is not None:  # a second version of the same model, as a re-run would write it
        import json

        card = json.loads((path / "card.json").read_text())
        card["version"] = version
        (path / "card.json").write_text(json.dumps(card))
        from automodel.artifact import read_artifact

        artifact = read_artifact(path)
    return artifact, data


@pytest.fixture(scope="session")
def digits_artifact(tmp_path_factory, digits):
    """A logistic-regression digits artifact (64 numeric columns, 10 classes) and its dataset."""
    path = tmp_path_factory.mktemp("serve") / "digits" / "artifact"
    spec = Spec(name="digits")
    return make_artifact(path, spec, "logistic", {"C": 1.0}, dataset=digits)


MIXED_CSV = """age,city,plan,income,churn
"""


@pytest.fixture(scope="session")
def mixed_artifact(tmp_path_factory):
    """A table with categorical, numeric and missing values: the pandas path of the predictor."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "city": rng.choice(["paris", "lyon", "nice"], n),
        "plan": rng.choice(["basic", "pro"], n),
        "income": rng.normal(50, 10, n),
    })
    frame.loc[::17, "age"] = np.nan
    frame.loc[::13, "city"] = None
    frame["churn"] = np.where((frame["plan"] == "pro") ^ (frame["income"] > 50), "yes", "no")
    root = tmp_path_factory.mktemp("serve") / "mixed"
    root.mkdir(exist_ok=True)
    csv = root / "churn.csv"
    frame.to_csv(csv, index=False)
    spec = Spec(name="churn", data={"source": str(csv), "target": "churn"})
    return make_artifact(root / "artifact", spec, "logistic")
