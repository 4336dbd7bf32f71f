"""THE restart test: a real `automodel train` whose Ray Train worker is SIGKILLed produces a report
that marks the restart, from the one marker the training loop writes (``restarted``)."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from automodel.contracts import Card
from tests.conftest import run_cli
from tests.report.test_report import section
from tests.train.test_train_ray import _kill_after_first_checkpoint

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC = {
    "name": "restart",
    "data": {"source": "builtin:digits", "seed": 0},
    "model": {
        "family": "mlp",
        "params": {"hidden": 64, "layers": 1, "lr": 0.003, "batch_size": 64},
    },
    "train": {
        "num_workers": 2,
        "epochs": 10,
        "checkpoint_every": 1,
        "keep_checkpoints": 2,
        "max_failures": 2,
        "early_stopping_patience": None,
    },
}


def test_report_marks_the_restart_of_a_killed_worker(tmp_path):
    out = tmp_path / "run"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_after_first_checkpoint, args=(out, killed, time.time() + 300), daemon=True
    )
    killer.start()
    r = run_cli("train", str(tmp_path / "spec.yaml"), "--out", str(out), timeout=600)
    killer.join(timeout=5)
    assert killed, "no RayTrainWorker of this run was found to kill"
    assert r.returncode == 0, r.stderr[-3000:]

    card = Card.read(out / "artifact" / "card.json")
    assert card.train.restarts >= 1
    # The marker sits on the first epoch the replacement group ran: right after its checkpoint.
    resumed = card.train.resumed_after_epoch[0]
    assert card.restart_epochs[0] == resumed + 1
    html = (out / "report.html").read_text()
    training = section(html, "training")
    loss_chart = training.split('data-plot="train-loss"')[1].split("</svg>")[0]
    assert "worker restart" in loss_chart
    assert f"ran epoch {', '.join(map(str, card.restart_epochs))} first" in training
    assert "restarted the workers" in training
