"""`ray job submit ... jobs/predict.py` on a real two-node cluster: actors on both nodes."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.cluster.test_two_node import TwoNodeCluster, _client_env
from tests.conftest import REPO
from tests.predict.conftest import BAD, ID, write_parts

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_nodes():
    # Short path: Ray's unix sockets live under the temp dir and are limited to ~107 characters.
    base = Path(tempfile.mkdtemp(prefix="amp-", dir="/tmp"))
    c = TwoNodeCluster(base)
    yield c
    c.close()
    shutil.rmtree(base, ignore_errors=True)


def _node_ids(c: TwoNodeCluster) -> set[str]:
    r = requests.get(f"{c.url}/api/v0/nodes", headers=c.headers(), timeout=10)
    return {n["node_id"] for n in r.json()["data"]["result"]["result"] if n["state"] == "ALIVE"}


def test_ray_job_submit_scores_a_folder_on_both_nodes(two_nodes, digits_predict, tmp_path):
    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=6)
    out = tmp_path / "out"
    cmd = [
        "ray",
        "job",
        "submit",
        "--address",
        two_nodes.url,
        "--working-dir",
        ".",
        "--",
        "python",
        "jobs/predict.py",
        str(artifact.path),
        str(inp),
        "--out",
        str(out),
        "--id",
        ID,
        # Each node has one CPU: an actor takes half, reads and writes a quarter each.
        "--concurrency",
        "2",
        "--num-cpus",
        "0.5",
        "--batch-size",
        "32",
    ]
    start = time.time()
    res = subprocess.run(
        cmd,
        cwd=REPO,
        env=_client_env(two_nodes, RAY_AUTH_MODE="token"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = res.stdout + res.stderr
    assert res.returncode == 0 and "succeeded" in text.lower(), text[-3000:]
    assert f"predicted {len(frame) - len(BAD):,} rows (2 refused" in text, text[-3000:]

    summary = json.loads((out / "predict.json").read_text())
    assert summary["rows"] == len(frame) and summary["errors"] == len(BAD)
    nodes = {a["node"] for a in summary["actors"]}
    assert len(summary["actors"]) == 2 and nodes == _node_ids(two_nodes), summary["actors"]
    assert sum(a["rows"] for a in summary["actors"]) == len(frame)
    got = pd.concat(pd.read_parquet(f) for f in out.glob("*.parquet"))
    assert sorted(got[ID]) == sorted(frame.drop(index=list(BAD))[ID])
    print(
        f"ray job submit jobs/predict.py: {time.time() - start:.1f} s, rows per actor "
        f"{[a['rows'] for a in summary['actors']]}"
    )


def test_automodel_submit_job_predict(two_nodes, digits_predict, tmp_path):
    from tests.conftest import run_cli

    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=2)
    out = tmp_path / "out"
    res = run_cli(
        "submit",
        "--job",
        "predict",
        str(artifact.path),
        "--input",
        str(inp),
        "--out",
        str(out),
        "--predict-args",
        f"--id {ID} --num-cpus 0.5 --probabilities",
        "--address",
        two_nodes.url,
        cwd=REPO,
        env=_client_env(two_nodes),
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    assert " SUCCEEDED" in res.stderr, res.stderr[-2000:]
    summary = json.loads((out / "predict.json").read_text())
    assert summary["scored"] == len(frame) - len(BAD) and summary["errors"] == len(BAD)
    got = pd.concat(pd.read_parquet(f) for f in out.glob("*.parquet"))
    assert "probability_0" in got.columns and len(got) == summary["scored"]
