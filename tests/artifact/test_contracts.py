"""The contracts: a real artifact written and read through the Card, old files (no
schema_version) that load, files that do not fit or come from a newer automodel, the leaderboard
and journal helpers. No Ray: a scikit-learn model on iris, written as the pipeline writes it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from automodel.artifact import read_artifact, write_artifact
from automodel.contracts import (
    Card,
    HistoryRow,
    JournalLine,
    LeaderboardRow,
    read_journal,
    read_leaderboard,
    write_leaderboard,
)
from automodel.data import load_dataset
from automodel.errors import ArtifactError
from automodel.metrics import (
    METRICS,
    MODES,
    baseline_raw,
    default_metric,
    metrics_for,
    score,
    score_raw,
    scores_raw,
)
from automodel.models import FAMILIES
from automodel.spec import DataSpec


@pytest.fixture(scope="module")
def iris():
    return load_dataset(DataSpec(source="builtin:iris"))


@pytest.fixture(scope="module")
def model(iris):
    m = FAMILIES["logistic"](iris.task, iris.n_features, iris.n_outputs, {}, seed=0, max_steps=1)
    return m.fit(iris.X_train, iris.y_train)


@pytest.fixture
def artifact(tmp_path, iris, model):
    onnx_bytes, output = model.to_onnx()
    card = Card(
        name="iris",
        task=iris.task,
        family="logistic",
        metric="accuracy",
        classes=iris.classes,
        history=[HistoryRow(epoch=1, train_loss=0.5, val_accuracy=0.9)],
    )
    card.metrics.test = scores_raw(iris.task, iris.y_test, model.predict_raw(iris.X_test))
    return write_artifact(
        tmp_path / "artifact",
        onnx_bytes=onnx_bytes,
        output_name=output,
        preprocessor=iris.preprocessor,
        card=card,
    )


def test_card_round_trips_through_the_artifact(artifact):
    raw = json.loads((artifact.path / "card.json").read_text())
    assert raw["schema_version"] == Card.SCHEMA_VERSION
    assert raw["history"][0]["restarted"] is False and raw["history"][0]["val_accuracy"] == 0.9
    back = read_artifact(artifact.path)
    assert back.card == artifact.card and back.card.family == "logistic"
    assert back.card.history[0].val() == {"accuracy": 0.9}
    assert back.output_name == raw["onnx"]["output"] and back.card.features  # filled in
    assert back.card.metrics.test["accuracy"] > 0.8
    # Callers not yet moved to attributes read it as the JSON it is.
    assert back.card["metrics"]["test"] == raw["metrics"]["test"] and back.card.get("nope") is None


def test_card_without_schema_version_is_version_0_and_loads(artifact):
    path = artifact.path / "card.json"
    raw = json.loads(path.read_text())
    raw.pop("schema_version")
    raw["history"] = [{"epoch": 1, "val_accuracy": 0.8, "restarted": False}, {"epoch": 2}]
    raw["legacy_key"] = "kept"
    path.write_text(json.dumps(raw))
    card = read_artifact(artifact.path).card
    assert card.schema_version == 0 and card.restart_epochs == [] and card.legacy_key == "kept"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "clustering"}, "not a valid Card (schema_version 1): task:"),
        ({"history": [{"epoch": "first"}]}, "history.0.epoch"),
        ({"schema_version": 7}, "written by a newer automodel (Card schema_version 7"),
    ],
)
def test_a_card_that_does_not_fit_is_one_clear_error(artifact, change, message):
    path = artifact.path / "card.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ArtifactError, match=re.escape(message)) as err:
        read_artifact(artifact.path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert "re-create the artifact" in str(err.value) or "upgrade automodel" in str(err.value)


def test_restart_marker_is_the_one_field(artifact):
    card = artifact.card.model_copy(
        update={"history": [HistoryRow(epoch=e, restarted=e == 4) for e in range(1, 7)]}
    )
    assert card.restart_epochs == [4]


def test_leaderboard_and_journal_round_trip(tmp_path):
    rows = [
        LeaderboardRow(
            trial_id="a1", family="mlp", score=0.9, iterations=3, k=8, params={"lr": 0.1}
        ),
        LeaderboardRow(
            trial_id="b2", family="xgboost", score=None, status="error", device="cuda:0"
        ),
    ]
    path = write_leaderboard(tmp_path / "leaderboard.csv", rows, "accuracy")
    header = path.read_text().splitlines()[0].split(",")
    assert header[:8] == [
        "trial_id",
        "family",
        "accuracy",
        "iterations",
        "status",
        "k",
        "params",
        "time_s",
    ]
    metric, back = read_leaderboard(path)
    assert metric == "accuracy" and back == rows
    lines = [
        JournalLine.make(metric="rmse", score=1.5, trial_id="a1", family="mlp", iteration=i)
        for i in (1, 2)
    ]
    (tmp_path / "trials.jsonl").write_text("".join(x.line() for x in lines) + '{"trial_id": "a')
    read, warnings = read_journal(tmp_path / "trials.jsonl")
    assert [x.score("rmse") for x in read] == [1.5, 1.5] and len(warnings) == 1


def test_one_place_for_metric_directions_and_defaults(iris, model):
    assert MODES == {name: info.mode for name, info in METRICS.items()}
    assert default_metric("classification") == "accuracy" and default_metric("regression") == "r2"
    assert metrics_for("regression") == ["rmse", "r2"]
    raw = model.predict_raw(iris.X_test)
    assert score_raw(iris.task, "accuracy", iris.y_test, raw) == score(
        "accuracy", iris.y_test, raw.argmax(axis=1), raw
    )
    base = baseline_raw(iris.task, iris.y_train, len(iris.y_test), len(iris.classes))
    majority = np.bincount(iris.y_train.astype(int)).argmax()
    assert scores_raw(iris.task, iris.y_test, base)["accuracy"] == np.mean(iris.y_test == majority)
    mean = baseline_raw("regression", np.array([1.0, 2.0, 6.0]), 2)
    assert score_raw("regression", "rmse", np.array([3.0, 3.0]), mean) == 0.0
