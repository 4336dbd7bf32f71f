"""In-process training on the session's Ray with rows streamed from Ray Data every epoch."""

from __future__ import annotations

import pytest

from automodel.pipeline import test_metrics as scores
from automodel.spec import Spec
from automodel.train import train_model


@pytest.mark.ray
def test_streamed_rows_split_disjointly_and_train(ray_cluster, digits, tmp_path, monkeypatch):
    # 0 MB of cache: the shard is not kept in worker memory but read from Ray Data each epoch, the
    # path data larger than a worker's memory takes.
    monkeypatch.setenv("AUTOMODEL_TRAIN_CACHE_MB", "0")
    spec = Spec.model_validate(
        {
            "train": {"num_workers": 2, "epochs": 4, "checkpoint_every": 2, "keep_checkpoints": 1},
            "runtime": {"quiet": True},
        }
    )
    trained = train_model(
        spec,
        digits,
        "mlp",
        {"hidden": 128, "layers": 1, "lr": 0.003, "batch_size": 64},
        run_dir=tmp_path,
    )
    info = trained.info
    assert info["data"] == "streamed" and info["workers"] == 2 and info["epochs"] == 4
    shards = info["shards"]
    assert shards["rows"] == len(digits.X_train) and shards["rows_overlap"] == 0
    assert sum(shards["rows_per_worker"]) == shards["rows_covered"] >= shards["rows"] - 1
    assert min(shards["rows_per_worker"]) > 0
    assert scores(trained, digits)["accuracy"] >= 0.9
    # checkpoint_every 2 over 4 epochs, keep 1: the latest remains, under <run_dir>/train
    assert sorted(p.name for p in (tmp_path / "train").glob("checkpoint_epoch*")) == [
        "checkpoint_epoch0004"
    ]
