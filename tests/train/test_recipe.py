"""One training recipe: search trials, the final fit (in-process and on Ray Train workers) train
through ``models._recipe.train_epoch``; ``train.num_workers: auto``; refit; progress; errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from automodel.errors import TrainingError
from automodel.models import FAMILIES
from automodel.models._recipe import RECIPE, Recipe
from automodel.spec import Spec
from automodel.train import Refit, train_model
from automodel.train._workers import RAY_TRAIN_STARTUP_S, fit_threads, plan_workers

PARAMS = {
    "hidden": 64,
    "layers": 1,
    "lr": 0.003,
    "dropout": 0.0,
    "weight_decay": 1e-4,
    "batch_size": 64,
}


def _spec(**train) -> Spec:
    return Spec.model_validate(
        {"search": {"max_epochs": 4}, "train": {"epochs": 4, **train}, "runtime": {"quiet": True}}
    )


def test_in_process_final_fit_trains_exactly_as_a_search_trial(digits):
    # A trial steps the family (one epoch of the recipe a step); the in-process final fit must
    # give the same losses and the same weights from the same seed, params and rows.
    spec = _spec(early_stopping_patience=None)
    trial = FAMILIES["mlp"](
        digits.task, digits.n_features, digits.n_outputs, PARAMS, seed=0, max_steps=4
    )
    trial.train_settings = spec.train
    with fit_threads():  # trials run one thread; so does an in-process fit
        losses = [trial.step(digits.X_train, digits.y_train) for _ in range(4)]
    trained = train_model(spec, digits, "mlp", PARAMS)
    info = trained.info
    assert info["backend"] == "local" and info["startup_s"] == 0.0
    assert "one process trains" in info["workers_reason"]
    assert [r["train_loss"] for r in trained.history] == pytest.approx(losses, rel=1e-5)
    for name, value in trial.module_.state_dict().items():
        torch.testing.assert_close(trained.state_dict[name], value, rtol=1e-5, atol=1e-6)
    # both name the recipe that trained them, schedule included
    assert info["recipe"] == trial.last_epoch_["recipe"]
    assert (
        info["recipe"].startswith(RECIPE)
        and "cosine over 4 epoch(s), warm-up 1, clip 1" in info["recipe"]
    )
    recipe = Recipe(lr=0.003, batch_size=64, weight_decay=1e-4, epochs=4)
    assert [r["lr"] for r in trained.history] == pytest.approx(
        [recipe.lr_at(e) for e in (1, 2, 3, 4)]
    )


def test_auto_workers_fit_small_data_in_process_and_large_data_on_the_cluster(digits):
    spec = Spec.model_validate({"runtime": {"num_cpus": 2}})
    small = plan_workers(spec, digits, "mlp", PARAMS, 30)
    assert small.in_process and small.estimate_s < 2 * RAY_TRAIN_STARTUP_S
    assert "start-up" in small.reason and "1221 rows x 30 epochs" in small.reason
    # 5 M rows (a broadcast view: no memory) would take one process far longer than start-up
    big = dataclasses.replace(
        digits,
        X_train=np.broadcast_to(digits.X_train[:1], (5_000_000, digits.n_features)),
        y_train=np.broadcast_to(digits.y_train[:1], (5_000_000,)),
    )
    large = plan_workers(spec, big, "mlp", PARAMS, 30)
    assert not large.in_process and large.workers == 2, large
    assert "2 workers save up to" in large.reason
    # an explicit number keeps its meaning; scikit-learn families never start Ray Train
    explicit = Spec.model_validate({"train": {"num_workers": 1}})
    assert plan_workers(explicit, digits, "mlp", PARAMS, 30).workers == 1
    assert not plan_workers(explicit, digits, "mlp", PARAMS, 30).in_process
    assert plan_workers(explicit, digits, "logistic", {}, 30).in_process


def test_refit_trains_on_train_and_validation_for_the_searched_epochs(digits):
    spec = _spec()
    trained = train_model(
        spec, digits, "mlp", PARAMS, refit=Refit(3, val_score=0.97, schedule_epochs=5)
    )
    info = trained.info
    assert info["refit"] is True and info["val_before_refit"] == 0.97 and trained.val_score == 0.97
    assert info["rows_seen"] == info["rows_available"] == len(digits.X_train) + len(digits.X_val)
    assert info["epochs"] == 3 and info["kept_epoch"] == 3
    assert all(r["val_accuracy"] is None for r in trained.history)  # no rows left to validate on
    assert "cosine over 5 epoch(s)" in info["recipe"]  # the trial's schedule, cut where it stopped
    assert np.mean(trained.model.predict(digits.X_test) == digits.y_test) > 0.9


def test_early_stop_is_announced_with_the_kept_epoch(digits, capsys):
    spec = Spec.model_validate({"train": {"epochs": 40, "early_stopping_patience": 1}})
    trained = train_model(spec, digits, "mlp", PARAMS)
    err = capsys.readouterr().err
    info = trained.info
    # a tie with the best keeps the later epoch (it trained longer) but is no improvement
    assert info["stopped_early"] and info["kept_epoch"] <= info["epochs"] < 40
    assert (
        f"early stop at epoch {info['epochs']}/40: val accuracy did not improve for 1 epoch(s); "
        f"keeping epoch {info['kept_epoch']}"
    ) in err
    assert "train: mlp: fit in this process (one process trains" in err
    assert trained.val_score == trained.history[info["kept_epoch"] - 1]["val_accuracy"]


@pytest.mark.ray
@pytest.mark.slow
def test_trials_and_ray_train_workers_train_with_the_same_recipe(
    ray_cluster, digits, tmp_path, capsys
):
    from ray.tune import Callback

    from automodel.search import tune

    class Results(Callback):
        def __init__(self):
            self.rows = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.rows.append(result)

    spec = Spec.model_validate(
        {
            "search": {
                "families": ["mlp"],
                "num_samples": 1,
                "max_epochs": 3,
                "space": {"mlp": PARAMS},
            },
            "train": {"num_workers": 1, "epochs": 3, "early_stopping_patience": None},
        }
    )
    seen = Results()
    result = tune(spec, digits, tmp_path / "run", callbacks=[seen])
    trial = [r for r in seen.rows if "recipe" in r]
    assert len(trial) == 3 and {r["device"] for r in trial} == {"cpu"}
    trained = train_model(spec, digits, result.family, result.params, run_dir=tmp_path / "run")
    info = trained.info
    assert info["backend"] == "ray_train" and info["workers"] == 1
    # the function that trained the trial's epochs trained the Ray Train worker's: same recipe,
    # same learning rate at the end of each epoch
    assert info["recipe"] == trial[-1]["recipe"] and info["recipe"].startswith(RECIPE)
    assert [r["lr"] for r in trained.history] == pytest.approx([r["lr"] for r in trial])
    assert info["startup_s"] > 0 and info["fit_s"] > 0
    err = capsys.readouterr().err
    assert "waiting for 1 Ray Train worker(s) to start" in err
    assert "on 1 Ray Train worker(s) (train.num_workers: 1)" in err


@pytest.mark.ray
@pytest.mark.slow
def test_a_failing_worker_is_named_with_its_error(ray_cluster, digits, tmp_path):
    spec = Spec.model_validate(
        {"train": {"num_workers": 1, "epochs": 2, "max_failures": 0}, "runtime": {"quiet": True}}
    )
    with pytest.raises(TrainingError) as info:  # nn.Dropout refuses p=2 when the worker builds it
        train_model(spec, digits, "mlp", {**PARAMS, "dropout": 2.0}, run_dir=tmp_path)
    msg = str(info.value)
    assert "training failed on the workers after 0 restart(s) (train.max_failures: 0)" in msg
    assert "rank 0:" in msg and "dropout probability has to be between 0 and 1" in msg


@pytest.mark.ray
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_a_trial_with_a_reserved_gpu_trains_on_it(ray_cluster, digits, tmp_path):
    from ray.tune import Callback

    from automodel.search import tune

    class Results(Callback):
        def __init__(self):
            self.rows = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.rows.append(result)

    spec = Spec.model_validate(
        {
            "search": {
                "families": ["mlp"],
                "num_samples": 1,
                "max_epochs": 2,
                "gpus_per_trial": 1,
                "space": {"mlp": PARAMS},
            },
            "runtime": {"quiet": True},
        }
    )
    seen = Results()
    tune(spec, digits, tmp_path / "run", callbacks=[seen])
    trial = [r for r in seen.rows if "device" in r]
    assert len(trial) == 2 and {r["device"] for r in trial} == {"cuda"}
    assert {r["bf16"] for r in trial} == {torch.cuda.is_bf16_supported()}
