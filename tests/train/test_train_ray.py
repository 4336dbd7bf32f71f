"""`automodel train` on Ray Train: 2 workers, rows from Parquet via Ray Data, a worker SIGKILLed.

Both runs go through the real CLI in a subprocess (its own embedded Ray), on digits written to a
Parquet file; the undisturbed run is the baseline the killed run is compared with.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EPOCHS = 14


@pytest.fixture(scope="module")
def digits_parquet(tmp_path_factory) -> Path:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    path = tmp_path_factory.mktemp("data") / "digits.parquet"
    frame.to_parquet(path, index=False)
    return path


def _spec(tmp: Path, source: Path, **train) -> Path:
    spec = {
        "name": "digits_pq",
        "data": {"source": str(source), "target": "label", "seed": 0},
        "model": {
            "family": "mlp",
            "params": {
                "hidden": 256,
                "layers": 1,
                "lr": 0.003,
                "dropout": 0.1,
                "weight_decay": 1e-4,
                "batch_size": 64,
            },
        },
        "train": {
            "num_workers": 2,
            "epochs": EPOCHS,
            "checkpoint_every": 1,
            "keep_checkpoints": 2,
            "max_failures": 2,
            "early_stopping_patience": None,
            **train,
        },
    }
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _card(out: Path) -> dict:
    return json.loads((out / "artifact" / "card.json").read_text())


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, digits_parquet) -> dict:
    tmp = tmp_path_factory.mktemp("undisturbed")
    out = tmp / "run"
    proc = run_cli("train", str(_spec(tmp, digits_parquet)), "--out", str(out), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "card": _card(out), "stderr": proc.stderr}


def test_two_workers_reach_095_on_disjoint_parquet_shards(undisturbed):
    card, out = undisturbed["card"], undisturbed["out"]
    assert card["metrics"]["test"]["accuracy"] >= 0.95
    train = card["train"]
    assert train["workers"] == 2 and train["use_gpu"] is False and train["restarts"] == 0
    assert train["backend"] == "ray_train" and train["epochs"] == EPOCHS
    # Ray Data split the training rows: two non-empty shares, no row read by both workers.
    shards = train["shards"]
    a, b = shards["rows_per_worker"]
    assert a > 0 and b > 0 and abs(a - b) <= 1
    assert shards["rows_overlap"] == 0
    assert shards["rows_covered"] == a + b >= shards["rows"] - 1
    # History: one row per epoch, in order, with the validation metric; the loss goes down.
    history = card["history"]
    assert [r["epoch"] for r in history] == list(range(1, EPOCHS + 1))
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 3
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["restarted"] is False for r in history)
    # Checkpoints live in the run directory; only the best keep_checkpoints (+ the latest) remain.
    checkpoints = sorted(p.name for p in (out / "train").glob("checkpoint_epoch*"))
    assert 1 <= len(checkpoints) <= 3, checkpoints
    assert (out / "artifact" / "weights.safetensors").is_file()
    assert "train: epoch" in undisturbed["stderr"]  # progress is visible


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _our_train_workers(marker: str) -> list[int]:
    """RayTrainWorker processes under the CLI process whose command line holds ``marker``.

    Other sessions may be training at the same time; only our subprocess's Ray is a candidate.
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and "RayTrainWorker" in _cmdline(int(entry)):
            if any(marker in _cmdline(p) for p in _ancestors(int(entry))):
                found.append(int(entry))
    return found


def _kill_after_first_checkpoint(out: Path, killed: list, deadline: float) -> None:
    # The controller writes its snapshot once it has registered a checkpoint: from then on a new
    # worker group resumes from it.
    while time.time() < deadline:
        if list((out / "train").glob("checkpoint_manager_snapshot*")) and list(
            (out / "train").glob("checkpoint_epoch*")
        ):
            workers = _our_train_workers(str(out))
            if workers:
                os.kill(workers[-1], signal.SIGKILL)
                killed.append(workers[-1])
                return
        time.sleep(0.05)


def test_sigkilled_worker_resumes_from_checkpoint(tmp_path, digits_parquet, undisturbed):
    out = tmp_path / "run"
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_after_first_checkpoint, args=(out, killed, time.time() + 300), daemon=True
    )
    killer.start()
    proc = run_cli("train", str(_spec(tmp_path, digits_parquet)), "--out", str(out), timeout=400)
    killer.join(timeout=5)
    assert killed, "no RayTrainWorker of this run was found to kill"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "restarted" in proc.stderr

    card = _card(out)
    train, history = card["train"], card["history"]
    assert train["restarts"] >= 1 and train["workers"] == 2
    # Resumed from a checkpoint, not from epoch 0: the epoch count continues after it.
    resumed = train["resumed_after_epoch"][0]
    assert resumed >= 1
    assert [r["epoch"] for r in history] == list(range(1, EPOCHS + 1))
    assert [r["epoch"] for r in history if r["restarted"]][0] == resumed + 1
    # ... and ends where an undisturbed run ends.
    got, base = (
        card["metrics"]["test"]["accuracy"],
        undisturbed["card"]["metrics"]["test"]["accuracy"],
    )
    assert abs(got - base) <= 0.01, (got, base)
