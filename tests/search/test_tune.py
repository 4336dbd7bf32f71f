"""Sweeps on a real local Ray: ASHA + TPE over families and k, grid with CV, GP, time budget,
fractional resources, and the errors a user can hit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ray.tune import Callback

from automodel.errors import ResourceError, SearchError
from automodel.search import tune
from automodel.spec import spec_from_dict

pytestmark = pytest.mark.ray


def _spec(**search):
    features = search.pop("features", {"method": "none"})
    return spec_from_dict({"features": features, "search": search})


def _history(run_dir):
    return [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]


def test_digits_asha_tpe_over_families_and_k(ray_cluster, digits, tmp_path):
    """The issue's sweep: 12 trials of mlp / random_forest / logistic with k in [16, 64]."""
    spec = _spec(
        features={"method": "mutual_info", "k": [16, 64]},
        families=["mlp", "random_forest", "logistic"],
        num_samples=12,
        max_concurrent=2,
        max_epochs=20,
    )
    result = tune(spec, digits, tmp_path)

    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(board.columns[:7]) == [
        "trial_id",
        "family",
        "accuracy",
        "iterations",
        "status",
        "k",
        "params",
    ]
    assert len(board) == 12 and board.trial_id.is_unique
    assert (
        set(board.family) <= {"mlp", "random_forest", "logistic"} and board.k.between(16, 64).all()
    )
    assert result.score >= 0.95 and result.score == board.accuracy.max()
    assert result.family == board.family[0] and result.params == json.loads(board.params[0])
    # ASHA's rungs are kept per family: an MLP is judged against MLPs, so the first ones are never
    # cut at 2 epochs by forests already near their best; poorer trials are still stopped early.
    mlp = board[board.family == "mlp"]
    assert (mlp.iterations > spec.search.grace_period).any(), board
    assert (board.status == "stopped_early").any(), board
    # trials.jsonl: one line per reported result, the format learning curves are drawn from
    lines = _history(tmp_path)
    assert set(lines[0]) == {"trial_id", "family", "k", "iteration", "accuracy", "loss", "time"}
    per_trial = pd.DataFrame(lines).groupby("trial_id").iteration.agg(["count", "max"])
    assert (per_trial["count"] == per_trial["max"]).all()
    assert per_trial["max"].to_dict() == dict(zip(board.trial_id, board.iterations))
    assert all(isinstance(r["loss"], float) for r in lines if r["family"] == "mlp")


def test_grid_with_stratified_cv_matches_sklearn(ray_cluster, digits, tmp_path):
    """Grid runs every listed combination once; with cv_folds the score is the stratified CV mean."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    spec = _spec(
        families=["logistic"],
        searcher="grid",
        scheduler="fifo",
        cv_folds=3,
        space={"logistic": {"C": [[0.01, 1.0]]}},
    )
    result = tune(spec, digits, tmp_path)
    board = result.leaderboard
    assert sorted(json.loads(p)["C"] for p in board.params) == [0.01, 1.0]

    X = np.concatenate([digits.X_train, digits.X_val])
    y = np.concatenate([digits.y_train, digits.y_val])
    for params, got in zip(board.params, board.accuracy):
        cv = StratifiedKFold(3, shuffle=True, random_state=spec.data.seed)
        want = cross_val_score(
            LogisticRegression(C=json.loads(params)["C"], max_iter=500), X, y, cv=cv
        ).mean()
        assert got == pytest.approx(want, abs=1e-9)


def test_gp_searcher_sweep(ray_cluster, digits, tmp_path):
    # 2 random start-up trials, then one the Gaussian process proposes
    spec = _spec(families=["logistic", "random_forest"], searcher="gp", num_samples=3, max_epochs=5)
    result = tune(spec, digits, tmp_path)
    assert len(result.leaderboard) == 3 and result.score >= 0.9


def test_time_budget_stops_the_sweep_and_keeps_the_best(ray_cluster, digits, tmp_path):
    spec = _spec(families=["logistic"], num_samples=1000, time_budget_s=20)
    result = tune(spec, digits, tmp_path)
    board = result.leaderboard
    assert (
        result.wall_s < 20 + 20
    )  # the budget, and the time to stop trials and write the leaderboard
    assert 0 < len(board) < 1000 and result.score == board.accuracy.max() > 0.9


def test_a_budget_that_ends_before_any_score_falls_back_to_the_cheapest_family(
    ray_cluster, digits, tmp_path
):
    """As FLAML does, a sweep with a time budget ends with a model, however short the budget."""
    spec = _spec(families=["mlp", "logistic"], num_samples=50, time_budget_s=0.01)
    with pytest.warns(
        UserWarning, match=r"ended before any trial reported a score; fell back to logistic"
    ):
        result = tune(spec, digits, tmp_path)
    assert result.family == "logistic" and result.params == {} and result.score > 0.9
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    fallback = board[board.status == "fallback"]
    assert len(fallback) == 1 and fallback.family.iloc[0] == "logistic", board
    assert board.accuracy.notna().sum() == 1, board  # no trial scored: only the fallback did


class _MaxRunning(Callback):
    def __init__(self):
        self.max_running = 0

    def on_step_begin(self, iteration, trials, **info):
        self.max_running = max(self.max_running, sum(t.status == "RUNNING" for t in trials))


def test_fractional_cpus_pack_more_trials_than_cores(ray_cluster, digits, tmp_path):
    spec = _spec(
        families=["mlp"],
        scheduler="fifo",
        num_samples=4,
        max_concurrent=4,
        max_epochs=8,
        cpus_per_trial=0.5,
    )
    running = _MaxRunning()
    tune(spec, digits, tmp_path, callbacks=[running])
    assert running.max_running > 2  # the local Ray has 2 CPUs


def test_short_trials_run_two_at_a_time_on_two_cpus(ray_cluster, digits, tmp_path):
    """Trials of milliseconds still fill both CPUs. A trial actor that imported torch and
    scikit-learn at its creation took seconds to start; each short trial ended first, Tune gave
    the next trial the finished trial's actor and stopped the starting one: one trial at a time."""
    spec = _spec(families=["logistic"], scheduler="fifo", num_samples=10, max_concurrent=2)
    running = _MaxRunning()
    tune(spec, digits, tmp_path, callbacks=[running])
    assert running.max_running == 2


def test_a_trial_actor_starts_without_the_heavy_imports():
    """What Ray unpickles to create a trial actor imports none of torch, scikit-learn, LightGBM,
    pandas, Optuna or Ray Tune itself (the actor's class has it): they load in its first trial."""
    import subprocess
    import sys

    heavy = ("torch", "sklearn", "lightgbm", "pandas", "optuna", "ray.tune")
    code = f"import sys, automodel.search._entry; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_trial_that_cannot_fit_is_an_error_not_a_hang(ray_cluster, digits, tmp_path):
    with pytest.raises(
        ResourceError,
        match=r"search\.gpus_per_trial: a trial asks for 1 GPUs but the local Ray has 0",
    ):
        tune(_spec(gpus_per_trial=1), digits, tmp_path)


def test_resume_without_a_sweep_and_overwriting_one_are_errors(ray_cluster, digits, tmp_path):
    with pytest.raises(SearchError, match="holds no sweep to resume"):
        tune(_spec(), digits, tmp_path, resume=True)
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "experiment_state-x.json").write_text("{}")
    with pytest.raises(SearchError, match="already holds a sweep; pass --resume"):
        tune(_spec(), digits, tmp_path)
