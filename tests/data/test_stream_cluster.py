"""On a real two-node Ray cluster (two `ray start` processes, one CPU each), the final fit's two
Ray Train workers, one on each node, read disjoint sets of the dataset's files, and together
the whole training split."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cluster.test_two_node import TwoNodeCluster
from tests.conftest import REPO

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCRIPT = """
import json, sys
from automodel.cluster import ray_session
from automodel.data import load_dataset, stream_files
from automodel.spec import spec_from_dict
from automodel.train import train_model

spec = spec_from_dict({
    "name": "two-node-stream",
    "data": {"source": sys.argv[1], "target": "y"},
    "train": {"num_workers": 2, "epochs": 1, "batch_size": 64},
    "runtime": {"address": "auto", "quiet": True},
})
with ray_session(spec.runtime):
    data = load_dataset(spec.data, files=stream_files(spec.data), sample_rows=500)
    trained = train_model(spec, data, "mlp", {"hidden": 16, "layers": 1}, run_dir=sys.argv[2])
print("RESULT " + json.dumps({"shards": trained.info["shards"], "train": data.stream.counts["train"],
                              "files": list(data.stream.files.names)}))
"""


@pytest.fixture(scope="module")
def cluster():
    base = Path(
        tempfile.mkdtemp(prefix="amd-", dir="/tmp")
    )  # short: Ray's socket paths are limited
    c = TwoNodeCluster(base)
    yield c
    c.close()


def test_each_node_reads_its_own_files(cluster, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "table"
    folder.mkdir()
    for i in range(6):
        X = rng.normal(size=(400, 4))
        frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
        frame["y"] = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
        frame.to_parquet(folder / f"part-{i}.parquet")
    env = {**cluster.env, "RAY_ADDRESS": cluster.gcs, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    out = json.loads(line[len("RESULT ") :])
    shards = out["shards"]
    assert len(set(shards["nodes"])) == 2  # one worker on each node
    first, second = (set(f) for f in shards["files_per_worker"])
    assert first and second and not first & second  # disjoint sets of files
    assert first | second == set(out["files"])  # together: every file
    assert shards["rows_covered"] == shards["rows"] == out["train"]  # the whole training split
    assert shards["rows_overlap"] == 0
