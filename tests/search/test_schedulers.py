"""ASHA with rungs kept per family, driven the way Tune drives a scheduler (no cluster needed)."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from automodel.search._schedulers import FamilyASHA

# Learning curves shaped like digits': a forest is near its best after its first chunk of trees,
# an MLP is far below it after 2 epochs and ends above it after 20.
FOREST = {2: 0.95, 6: 0.96, 20: 0.965}
MLP = {2: 0.80, 6: 0.93, 20: 0.975}


def _trial(tid: str, family: str):
    return SimpleNamespace(trial_id=tid, config={"family": family})


def _run(scheduler, trials: list[tuple[str, str, dict]]) -> dict[str, int]:
    """Trials one after another, each reporting at fidelities 2, 6, 20; the fidelity it reached."""
    reached = {}
    for tid, family, curve in trials:
        t = _trial(tid, family)
        scheduler.on_trial_add(None, t)
        last = None
        for fid, acc in curve.items():
            last = {"fidelity": fid, "accuracy": acc}
            reached[tid] = fid
            if scheduler.on_trial_result(None, t, last) == TrialScheduler.STOP:
                break
        scheduler.on_trial_complete(None, t, last)
    return reached


def _sweep():
    trials = [
        (f"rf{i}", "random_forest", {f: a - 0.002 * i for f, a in FOREST.items()}) for i in range(4)
    ]
    trials += [(f"mlp{i}", "mlp", {f: a - 0.01 * i for f, a in MLP.items()}) for i in range(3)]
    return trials


def test_shared_rungs_stop_every_mlp_at_the_first_rung():
    """Tune's ASHA, one ladder for all families: what the sweep did before."""
    shared = ASHAScheduler(
        time_attr="fidelity",
        metric="accuracy",
        mode="max",
        max_t=20,
        grace_period=2,
        reduction_factor=3,
    )
    reached = _run(shared, _sweep())
    assert [reached[f"mlp{i}"] for i in range(3)] == [2, 2, 2]


def test_family_rungs_let_the_best_mlp_train_to_the_end_and_still_cut_poor_ones():
    asha = FamilyASHA(time_attr="fidelity", metric="accuracy", mode="max", max_t=20, grace_period=2)
    reached = _run(asha, _sweep())
    assert reached["mlp0"] == 20  # the MLP that ends best is no longer killed at epoch 2
    assert reached["mlp1"] < 20 or reached["mlp2"] < 20  # poorer MLPs are cut by better MLPs
    assert reached["rf0"] == 20 and min(reached[f"rf{i}"] for i in range(1, 4)) < 20
    assert sum(asha.stopped.values()) >= 2 and set(asha.by_family) == {"random_forest", "mlp"}


def test_replayed_trials_fill_their_family_rungs():
    """After a resume, a new trial meets the rungs the finished ones left, not an empty ladder."""
    asha = FamilyASHA(time_attr="fidelity", metric="accuracy", mode="max", max_t=20, grace_period=2)
    results = [{"fidelity": f, "accuracy": a} for f, a in MLP.items()]
    asha.replay([("old", {"family": "mlp"}, results)])
    worse = _trial("new", "mlp")
    asha.on_trial_add(None, worse)
    assert (
        asha.on_trial_result(None, worse, {"fidelity": 2, "accuracy": 0.5}) == TrialScheduler.STOP
    )
    other = _trial("rf", "random_forest")  # another family's ladder is still empty
    asha.on_trial_add(None, other)
    assert (
        asha.on_trial_result(None, other, {"fidelity": 2, "accuracy": 0.5})
        == TrialScheduler.CONTINUE
    )
