"""`automodel run` end to end: the quickstart, a CSV run, a regression run, and the artifact."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from automodel.metrics import score
from automodel.serve import Predictor
from tests.conftest import CONFIGS, run_cli

pytestmark = pytest.mark.slow


def _check_artifact_reproduces(run_dir, metric):
    card = json.loads((run_dir / "artifact/card.json").read_text())
    assert {
        "name",
        "version",
        "task",
        "family",
        "params",
        "features",
        "classes",
        "metrics",
        "train",
        "compression",
        "data",
        "created",
        "automodel_version",
        "ray_version",
    } <= set(card)
    # Raw test rows through preprocess.json + model.onnx give the card's number.
    from automodel.data import load_dataset
    from automodel.spec import load_spec

    spec = load_spec(run_dir / "spec.yaml")
    d = load_dataset(spec.data)
    predictor = Predictor(run_dir / "artifact")
    target = d.preprocessor.target
    preds, _ = predictor.predict(d.raw_test.drop(columns=[target]))
    truth = d.raw_test[target].tolist()
    if card["task"] == "classification":
        got = (
            float(np.mean([p == t for p, t in zip(preds, truth)])) if metric == "accuracy" else None
        )
    else:
        got = score(metric, np.asarray(truth, dtype=float), np.asarray(preds))
    assert got == pytest.approx(card["metrics"]["test"][metric], abs=1e-6)
    return card


def test_quickstart_digits(tmp_path):
    proc = run_cli("run", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "run"
    last = proc.stdout.strip().splitlines()[-1]
    assert "best family" in last and str(run_dir) in last
    assert "search: trial" in proc.stderr  # progress is visible
    for name in (
        "spec.yaml",
        "leaderboard.csv",
        "artifact/model.onnx",
        "artifact/preprocess.json",
        "artifact/card.json",
    ):
        assert (run_dir / name).is_file(), name
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert list(board.columns[:7]) == [
        "trial_id",
        "family",
        "accuracy",
        "iterations",
        "status",
        "k",
        "params",
    ]
    assert len(board) == 8
    card = _check_artifact_reproduces(run_dir, "accuracy")
    assert card["metrics"]["test"]["accuracy"] >= 0.95


def test_csv_with_categoricals_and_missing_values(tmp_path):
    proc = run_cli("run", str(CONFIGS / "csv_tabular.yaml"), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = _check_artifact_reproduces(tmp_path / "run", "accuracy")
    assert card["metrics"]["test"]["accuracy"] >= 0.8
    assert "signup_date" in card["features"] and "plan" in card["features"]  # calendar features


def test_regression_with_missing_targets_within_a_run_time_budget(tmp_path):
    # the shipped config, with train.num_workers left at auto (an explicit 2 asks for Ray Train)
    text = (
        (CONFIGS / "regression.yaml")
        .read_text()
        .replace("source: data/", f"source: {CONFIGS}/data/")
    )
    spec = tmp_path / "regression.yaml"
    spec.write_text("\n".join(line for line in text.splitlines() if not line.startswith("train:")))
    r = run_cli("run", str(spec), "--time-budget", "0")
    assert r.returncode == 2 and "--time-budget: must be > 0 seconds, got 0" in r.stderr, r.stderr

    start = time.time()
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "run"), "--time-budget", "50")
    took = time.time() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The whole run, imports and Ray's start included, within the budget; the sweep got its share.
    assert took <= 50, (took, proc.stderr[-3000:])
    assert "s of the run's 50s budget" in proc.stderr, proc.stderr[-3000:]
    assert "missing target" in proc.stderr
    card = _check_artifact_reproduces(tmp_path / "run", "r2")
    assert card["metrics"]["test"]["r2"] >= 0.8 and card["metrics"]["test"]["rmse"] > 0
