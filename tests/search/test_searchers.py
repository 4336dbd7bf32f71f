"""The shared suite every searcher runs: valid suggestions, and a journalled state that really continues.

No Ray cluster is needed: searchers are plain objects driven here the way Tune drives them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from automodel.models import FAMILIES
from automodel.search import decode, family_spaces, grid_configs
from automodel.search._searchers import make_searcher, optuna_study, startup_trials
from automodel.spec import Choice, Fixed, Float, Int, spec_from_dict

MODEL_SEARCHERS = ["tpe", "gp", "random"]
NUM_SAMPLES = 12


def _spec(searcher: str, num_samples: int = NUM_SAMPLES):
    return spec_from_dict(
        {
            "features": {"k": [4, 32]},
            "search": {
                "families": ["logistic", "random_forest"],
                "searcher": searcher,
                "num_samples": num_samples,
                "max_concurrent": 1,
            },
        }
    )


def _generator(spec, study_path):
    from ray.tune.search import SearchGenerator

    spaces = family_spaces(spec, "classification")
    searcher = make_searcher(spec, spaces, (4, 32), "accuracy", "max", study_path)
    return SearchGenerator(searcher), spaces


def _objective(config) -> float:
    """Best at logistic with C = 10 and large k; random forests are mediocre everywhere."""
    family, params, k = decode(config)
    if family == "random_forest":
        return 0.6
    return 1.0 - abs(math.log10(params["C"]) - 1.0) / 5 - (32 - k) / 200


def _step(gen, n: int, start: int = 0) -> list[dict]:
    configs = []
    for i in range(start, start + n):
        tid = f"t{i:03d}"
        config = gen.searcher.suggest(tid)
        gen.searcher.on_trial_complete(
            tid, result={"accuracy": _objective(config), "training_iteration": 1}
        )
        configs.append(config)
    return configs


def _in_space(value, domain) -> bool:
    if isinstance(domain, Fixed):
        return value == domain.value
    if isinstance(domain, Choice):
        return value in domain.values
    if isinstance(domain, Int):
        return isinstance(value, int) and domain.low <= value <= domain.high
    assert isinstance(domain, Float)
    return domain.low <= value <= domain.high


@pytest.mark.parametrize("name", MODEL_SEARCHERS)
def test_suggestions_decode_to_valid_family_params(name, tmp_path):
    gen, spaces = _generator(_spec(name), tmp_path / "study.jsonl")
    for config in _step(gen, 6):
        family, params, k = decode(config)
        assert family in ("logistic", "random_forest")
        assert set(params) == set(spaces[family]), (name, params)
        assert all(_in_space(v, spaces[family][p]) for p, v in params.items()), (name, params)
        assert 4 <= k <= 32


@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_a_fresh_sweep_starts_with_each_familys_defaults_cheapest_first(name, tmp_path):
    """Model-based searchers first try every family at its defaults, cheapest family first, so a
    short budget meets a sound configuration of each; the resumed study does not enqueue again."""
    spec = _spec(name)
    path = tmp_path / "study.jsonl"
    gen, spaces = _generator(spec, path)
    first = [decode(c) for c in _step(gen, 2)]
    assert [f for f, _, _ in first] == ["logistic", "random_forest"]
    for family, params, _ in first:
        want = FAMILIES[family].defaults("classification")
        assert params == {p: want[p] for p in spaces[family]}, (family, params)
    reopened, _ = _generator(spec, path)
    study = optuna_study(reopened.searcher)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]  # none re-enqueued


@pytest.mark.parametrize("name", MODEL_SEARCHERS)
def test_reopened_journal_holds_the_told_trials(name, tmp_path):
    """A searcher built on the journal a killed sweep left sees every trial told before, with its
    score; the trial the kill cut off (asked, never told) was never recorded and is not waited
    on; new trials number on."""
    spec = _spec(name, num_samples=6)
    path = tmp_path / "study.jsonl"
    first, _ = _generator(spec, path)
    configs = _step(first, 3)
    first.searcher.suggest("cut-off")  # running when the sweep was killed
    with open(path, "ab") as f:
        f.write(b'{"op_code": 5, "torn')  # a SIGKILL in the middle of a write

    reopened, _ = _generator(spec, path)
    study = optuna_study(reopened.searcher)
    told = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert [t.value for t in told] == pytest.approx([_objective(c) for c in configs])
    assert [t.user_attrs["tune_trial_id"] for t in told] == ["t000", "t001", "t002"]
    assert len(study.trials) == 3
    _step(reopened, 1, start=3)
    assert len(study.trials) == 4 and study.trials[-1].state.name == "COMPLETE"


def test_restored_tpe_models_the_results_instead_of_sampling_at_random(tmp_path):
    """Reopened on a journal, TPE proposes near the optimum the told trials point to (C = 10 for
    logistic), far more often than the random searcher does from the same history."""

    def closeness(name: str) -> float:
        spec = _spec(name)
        path = tmp_path / f"{name}.jsonl"
        gen, _ = _generator(spec, path)
        _step(gen, 10)
        restored, _ = _generator(spec, path)
        return float(np.mean([_objective(c) for c in _step(restored, 12, start=10)]))

    assert startup_trials(NUM_SAMPLES) < 10  # the restored TPE is past its random start-up trials
    tpe, rand = closeness("tpe"), closeness("random")
    assert tpe > rand + 0.05, (tpe, rand)


def test_gp_models_every_family_parameter(tmp_path):
    """GP sees the flat space, so each family's parameters are in every trial's Optuna params
    (a conditional space would leave GP only the family and k to model)."""
    gen, spaces = _generator(_spec("gp", num_samples=6), tmp_path / "study.jsonl")
    _step(gen, 3)
    params = optuna_study(gen.searcher).trials[-1].params
    for family, space in spaces.items():
        searched = [p for p, d in space.items() if not isinstance(d, Fixed)]
        assert all(any(key.startswith(f"{family}.{p}") for key in params) for p in searched), (
            family,
            params,
        )


def test_grid_enumerates_every_combination_once():
    spec = spec_from_dict(
        {
            "search": {
                "families": ["logistic", "random_forest"],
                "searcher": "grid",
                "space": {
                    "logistic": {"C": [[0.1, 1.0, 10.0]]},
                    "random_forest": {"n_estimators": [[10, 50]], "max_depth": [[None, 10]]},
                },
            }
        }
    )
    spaces = family_spaces(spec, "classification")
    configs = grid_configs(spaces, [8, 16])
    decoded = [decode(c) for c in configs]
    logistic = [(p["C"], k) for f, p, k in decoded if f == "logistic"]
    forests = [
        (p["n_estimators"], p["max_depth"], p["min_samples_split"], p["max_features"], k)
        for f, p, k in decoded
        if f == "random_forest"
    ]
    assert sorted(logistic) == sorted((c, k) for c in (0.1, 1.0, 10.0) for k in (8, 16))
    # unlisted ranges give GridSearchCV-like 3 points; choices give all their values
    n_other = 3 * len(FAMILIES["random_forest"].space("classification")["max_features"].values)
    assert len(forests) == len(set(forests)) == 2 * 2 * n_other * 2
