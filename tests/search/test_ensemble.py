"""The ensemble of the top trials: greedy weights on validation, kept only when it beats the best
member, exported as one ONNX graph that answers as the members' weighted sum."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from automodel.metrics import score_raw
from automodel.models import FAMILIES
from automodel.search import SearchResult, select_ensemble
from automodel.search._ensemble import Ensemble, greedy_weights
from automodel.spec import spec_from_dict


@pytest.fixture(autouse=True)
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _result(metric: str, trials: list[tuple[str, dict]], status: str = "completed") -> SearchResult:
    """A finished sweep's leaderboard (best first), as `tune` writes it."""
    board = pd.DataFrame(
        [
            {
                "trial_id": f"t{i}",
                "family": fam,
                metric: 0.9 - 0.01 * i,
                "iterations": 5,
                "status": status,
                "k": "",
                "params": json.dumps(params),
                "time_s": 0.5,
            }
            for i, (fam, params) in enumerate(trials)
        ]
    )
    fam, params = trials[0]
    return SearchResult(fam, params, None, 0.9, metric, board, None, wall_s=60.0)


def test_greedy_weights_pick_the_better_mix():
    y = np.array([0, 1, 0, 1])
    a = np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4], [0.1, 0.9]])  # 3 of 4 right
    b = np.array([[0.4, 0.6], [0.1, 0.9], [0.9, 0.1], [0.4, 0.6]])  # 3 of 4 right, other mistakes
    weights, score = greedy_weights([a, b], y, "classification", "accuracy", rounds=4)
    assert score == 1.0 and all(w > 0 for w in weights) and sum(weights) == pytest.approx(1.0)


def test_digits_ensemble_beats_its_best_member_and_exports_one_graph(digits, tmp_path):
    spec = spec_from_dict({"search": {"max_epochs": 5}})
    trials = [
        ("logistic", {"C": 0.05, "max_iter": 500}),
        (
            "random_forest",
            {"n_estimators": 60, "max_depth": None, "min_samples_split": 2, "max_features": "sqrt"},
        ),
        ("logistic", {"C": 5.0, "max_iter": 500}),
    ]
    ens = select_ensemble(spec, digits, _result("accuracy", trials))
    assert ens is not None and len(ens.members) >= 2
    assert ens.val_score > ens.info["best_single_val"]
    assert ens.info["scored_on"].startswith(
        "5-fold out-of-fold"
    )  # a small table: not the val split
    assert sum(ens.weights) == pytest.approx(1.0)
    assert [m["family"] for m in ens.params["members"]] == [m.name for m in ens.members]

    final = ens.final(digits, refit=True)
    onnx_bytes, output = final.to_onnx()
    session = ort.InferenceSession(onnx_bytes)
    assert [i.name for i in session.get_inputs()] == ["input"]
    out = session.run([output], {"input": digits.X_test})[0]
    np.testing.assert_allclose(out, final.predict_raw(digits.X_test), atol=1e-5)
    assert score_raw("classification", "accuracy", digits.y_test, out) > 0.95
    # chosen out of fold, the members were never fitted on a whole split: without a refit they
    # are fitted on the training split alone
    unrefit = ens.final(digits, refit=False)
    assert not unrefit.info["refit"]
    assert (
        score_raw("classification", "accuracy", digits.y_test, unrefit.predict_raw(digits.X_test))
        > 0.95
    )


def test_regression_ensemble_graph_matches_and_single_candidates_give_none():
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    data = load_dataset(DataSpec(source="synthetic:regression?rows=600&features=6&noise=10"))
    spec = spec_from_dict({"search": {"max_epochs": 5}})
    trials = [
        (
            "hist_gb",
            {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 16, "l2_regularization": 0.01},
        ),
        ("logistic", {"alpha": 1.0}),
    ]
    members = [
        FAMILIES[fam](data.task, data.n_features, 1, params, max_steps=5).fit(
            data.X_train, data.y_train
        )
        for fam, params in trials
    ]
    ens = Ensemble("regression", 1, members, [0.7, 0.3])
    onnx_bytes, output = ens.to_onnx()
    out = ort.InferenceSession(onnx_bytes).run([output], {"input": data.X_test})[0]
    want = 0.7 * members[0].predict(data.X_test) + 0.3 * members[1].predict(data.X_test)
    np.testing.assert_allclose(out.reshape(-1), want, rtol=1e-4, atol=1e-3)
    # trials ASHA stopped early are partial models: never members; one candidate: no ensemble
    assert select_ensemble(spec, data, _result("r2", trials, status="stopped_early")) is None
    assert select_ensemble(spec, data, _result("r2", trials[:1])) is None


def test_out_of_fold_rows_are_predicted_by_models_that_never_saw_them(digits):
    """Each row's out-of-fold prediction equals scikit-learn's ``cross_val_predict`` on the same
    stratified folds: the model that predicted it was fitted without it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from automodel.search._ensemble import out_of_fold

    X = np.concatenate([digits.X_train, digits.X_val])
    y = np.concatenate([digits.y_train, digits.y_val])
    model = FAMILIES["logistic"].for_data(digits, {"C": 0.5, "max_iter": 500})
    oof = out_of_fold(model, X, y, 5, seed=3)
    folds = StratifiedKFold(5, shuffle=True, random_state=3)
    want = cross_val_predict(
        LogisticRegression(C=0.5, max_iter=500), X, y, cv=folds, method="predict_proba"
    )
    np.testing.assert_allclose(oof, want, atol=1e-5)
    in_sample = model.fresh().fit(X, y).predict(X)
    assert (oof.argmax(1) == y).mean() < (in_sample == y).mean()


def test_a_budget_too_short_for_the_winner_gives_no_ensemble(digits):
    """Scored out of fold (a small table), the cheap candidates alone must not replace the
    winner: with the winner's fits over what the run's budget leaves, there is no ensemble."""
    spec = spec_from_dict({"search": {"max_epochs": 5}})
    trials = [
        (
            "random_forest",
            {"n_estimators": 60, "max_depth": None, "min_samples_split": 2, "max_features": "sqrt"},
        ),
        ("logistic", {"C": 0.05, "max_iter": 500}),
        ("logistic", {"C": 5.0, "max_iter": 500}),
    ]
    result = dataclasses.replace(_result("accuracy", trials), wall_s=600.0)
    result.leaderboard.loc[0, "time_s"] = 30.0  # the winner: 5 folds + a refit of 30 s each
    assert select_ensemble(spec, digits, result, budget_s=20.0) is None
    # with the time for it, the same candidates do make an ensemble
    assert select_ensemble(spec, digits, result, budget_s=400.0) is not None
