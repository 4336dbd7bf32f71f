"""`automodel tune --resume` after the whole sweep (driver, Ray, trials) was SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import REPO, run_cli

SPEC = """\
name: resume
features: {method: mutual_info, k: [16, 64]}
search: {families: [mlp, random_forest, logistic], num_samples: 10, max_concurrent: 2, max_epochs: 10}
"""


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _kill_after(spec, out, finished: int, timeout: float = 420):
    """Start `automodel tune` in its own process group; SIGKILL the group once ``finished``
    trials are recorded as done."""
    log = open(out.parent / "killed.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "automodel.cli", "tune", str(spec), "--out", str(out)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    marker = out / "tune" / "finished.jsonl"
    deadline = time.time() + timeout
    try:
        while len(_jsonl(marker)) < finished:
            assert proc.poll() is None, (
                "the sweep ended before it could be killed: "
                + (out.parent / "killed.log").read_text()[-2000:]
            )
            assert time.time() < deadline, "no trial finished in time"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_sigkilled_sweep_resumes_to_exactly_num_samples(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    _kill_after(spec, out, finished=3)

    finished_before = {r["trial_id"] for r in _jsonl(out / "tune" / "finished.jsonl")}
    lines_before = [r for r in _jsonl(out / "trials.jsonl") if r["trial_id"] in finished_before]
    assert len(finished_before) >= 3 and not (out / "leaderboard.csv").exists()

    proc = run_cli("tune", str(spec), "--out", str(out), "--resume", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stderr and "trial 10/10" in proc.stderr

    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 10 and board.trial_id.is_unique
    assert finished_before <= set(board.trial_id)
    assert (board.status != "error").all() and board.accuracy.notna().all()

    # None of the finished trials trained again: their lines are the ones written before the kill,
    # and no trial reported any iteration twice.
    lines = _jsonl(out / "trials.jsonl")
    assert [r for r in lines if r["trial_id"] in finished_before] == lines_before
    assert len({(r["trial_id"], r["iteration"]) for r in lines}) == len(lines)
    per_trial = pd.DataFrame(lines).groupby("trial_id").iteration.max().to_dict()
    assert per_trial == dict(zip(board.trial_id, board.iterations))

    # The searcher's state was carried over in its JSON journal: the Optuna study holds every
    # trial of both runs, the 10 on the leaderboard told their scores; trials the kill cut off
    # are failed, not left waiting.
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / "tune" / "optuna.jsonl")))
    study = optuna.load_study(study_name="sweep", storage=storage)
    complete = {
        t.user_attrs["tune_trial_id"]: t.value
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    assert set(complete) == set(board.trial_id)
    assert all(
        complete[tid] == pytest.approx(v, abs=1e-9)
        for tid, v in zip(board.trial_id, board.accuracy)
    )
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "FAIL"}


def test_resume_on_a_directory_without_a_sweep_says_so(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    (tmp_path / "empty").mkdir()
    proc = run_cli("tune", str(spec), "--out", str(tmp_path / "empty"), "--resume", timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("--resume:")
    assert "holds no sweep to resume" in proc.stderr and "Traceback" not in proc.stderr
