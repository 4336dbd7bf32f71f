"""On streamed files the final model learns from every row, not from the search's sample.

Under the default ``train.num_workers: auto``, the winner's refit on train + validation reads
the files on the cluster: LightGBM on Ray Train's workers and logistic regression through a
streaming solver see every row; a random forest sees the rows ``train.max_rows_in_memory``
allows. The card's ``train.rows_seen`` and ``rows_available`` say so, and so does progress.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROWS = 120_000
SAMPLE = 8_000  # search.sample_rows: the driver holds a fraction of the rows
FOREST_LIMIT = 25_000


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, ray_cluster):
    from automodel.data import load_dataset, stream_files
    from automodel.spec import Spec

    root = tmp_path_factory.mktemp("all_rows")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 8)).astype("float32")
    logit = X[:, 0] * X[:, 1] + X[:, 2] - 0.7 * X[:, 3] * X[:, 4] + 0.8 * X[:, 5]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    frame["label"] = np.where(logit + rng.normal(scale=0.5, size=ROWS) > 0, "yes", "no")
    for i, idx in enumerate(np.array_split(np.arange(ROWS), 4)):
        frame.iloc[idx].reset_index(drop=True).to_parquet(root / f"part-{i}.parquet")
    spec = Spec.model_validate(
        {
            "data": {"source": str(root), "target": "label"},
            "search": {"sample_rows": SAMPLE},
            "train": {"max_rows_in_memory": FOREST_LIMIT},
            "runtime": {"quiet": True},
        }
    )
    data = load_dataset(spec.data, files=stream_files(spec.data), sample_rows=SAMPLE)
    assert data.stream is not None and len(data.X_train) == SAMPLE
    return spec, data


def _refit(spec, data, family, params):
    from automodel.train import Refit, train_model

    lines: list[str] = []
    trained = train_model(
        spec,
        data,
        family,
        params,
        refit=Refit(epochs=5, val_score=0.8),
        progress=lambda stage, message: lines.append(message),
    )
    return trained, lines


def _card_train(spec, data, trained, path):
    from automodel.artifact import read_artifact
    from automodel.pipeline import build_artifact

    build_artifact(spec, data, trained, path)
    return read_artifact(path).card


def test_lightgbm_and_logistic_learn_from_every_row(streamed, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from automodel.models import FAMILIES
    from automodel.pipeline import test_metrics
    from automodel.train import TrainedModel

    spec, data = streamed
    counts = data.stream.counts
    every = counts["train"] + counts["val"]
    assert every > 10 * SAMPLE

    trained, lines = _refit(spec, data, "logistic", {"C": 1.0})
    card = _card_train(spec, data, trained, tmp_path / "logistic")
    assert card.train.rows_seen == card.train.rows_available == every
    assert trained.info["backend"] == "ray_worker"
    assert any("on one Ray worker" in line for line in lines), lines
    assert any(f"rows seen {every:,} of {every:,} available" in line for line in lines), lines
    # the streaming solver reaches what scikit-learn's solver gets on the driver's rows
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    sample = FAMILIES["logistic"].for_data(data, {"C": 1.0})
    sample.model_ = LogisticRegression(C=1.0, max_iter=500).fit(X, y)
    on_sample = test_metrics(TrainedModel(sample, "logistic", {}, {}), data)["accuracy"]
    assert card.metrics.test["accuracy"] >= on_sample - 0.005

    trained, lines = _refit(spec, data, "lightgbm", {"n_estimators": 100, "learning_rate": 0.2})
    assert trained.info["trainer"] == "LightGBMTrainer" and trained.info["workers"] >= 1
    assert trained.info["rows_seen"] == trained.info["rows_available"] == every
    assert sum(trained.info["rows_per_worker"]) == every
    assert any("LightGBMTrainer reads them all" in line for line in lines), lines
    assert test_metrics(trained, data)["accuracy"] > on_sample  # interactions: trees do better


def test_random_forest_takes_the_rows_its_memory_limit_allows(streamed):
    spec, data = streamed
    every = data.stream.counts["train"] + data.stream.counts["val"]
    trained, lines = _refit(spec, data, "random_forest", {"n_estimators": 20, "max_depth": 12})
    info = trained.info
    assert info["rows_seen"] == FOREST_LIMIT and info["rows_available"] == every
    assert info["backend"] == "ray_worker" and info["max_rows_in_memory"] == FOREST_LIMIT
    assert any(f"rows seen {FOREST_LIMIT:,} of {every:,} available" in line for line in lines)
