"""The whole path on a cluster whose nodes share no disk (tests/cluster/_shared_nothing.py): S3
is the only storage both nodes reach.

pipeline from s3:// data with runtime.storage s3:// -> the run directory and artifact in S3 ->
predict from the S3 artifact and S3 data into S3 -> the S3 artifact served with two replicas, one
on each node, answering /predict with the offline predictions -> `tune --resume` from S3 after
the head's local copy of the run is deleted. A local artifact given to the deploy job is refused
before anything deploys (one line naming the fix), and no local folder named ``s3:`` appears."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import requests

from automodel import storage
from tests.conftest import REPO, free_port, run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _iris(n: int = 150):
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    frame.insert(0, "id", range(len(frame)))
    return frame.head(n)


def _python(cluster, *args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_pipeline_predict_serve_and_resume_through_s3_only(shared_nothing, tmp_path, monkeypatch):
    c = shared_nothing
    for k, v in c.s3.env.items():
        monkeypatch.setenv(k, v)
    s3 = f"s3://{c.s3.bucket()}"
    frame = _iris()
    storage.write_bytes(f"{s3}/data/iris.csv", frame.to_csv(index=False).encode())
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f'name: sn\ndata: {{source: "{s3}/data/iris.csv", target: label}}\n'
        "search: {families: [logistic], num_samples: 2, max_concurrent: 2, max_epochs: 1, "
        "searcher: random, scheduler: fifo}\n"
        f'runtime: {{address: "{c.gcs}", storage: "{s3}/runs"}}\n'
    )
    head_cache = tmp_path / "head-cache"
    env = c.client_env(AUTOMODEL_CACHE=str(head_cache))
    work = tmp_path / "work"
    work.mkdir()

    # 1. the pipeline: everything it writes for others ends in S3
    r = run_cli("run", str(spec), cwd=work, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "warning: run directory" not in r.stderr  # storage is shared: no warning
    run_uri = r.stdout.strip().rsplit("run directory: ", 1)[1]
    held = storage.listdir(run_uri, recursive=True)
    for name in ("spec.yaml", "leaderboard.csv", "trials.jsonl", "report.html", "result.json",
                 "artifact/card.json", "artifact/model.onnx", "tune/sweep.json"):  # fmt: skip
        assert name in held, (name, held)
    art = f"{run_uri}/artifact"

    # 2. predict on the cluster: S3 artifact, S3 data, S3 scores
    r = _python(c, "jobs/predict.py", art, f"{s3}/data/", "--out", f"{s3}/scores/", "--id", "id",
                "--address", c.gcs, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    parts = [n for n in storage.listdir(f"{s3}/scores") if n.endswith(".parquet")]
    offline = pq.read_table(io.BytesIO(storage.read_bytes(f"{s3}/scores/{parts[0]}"))).to_pandas()
    offline = dict(zip(offline["id"], offline["prediction"]))
    assert len(offline) == 150

    # 3a. a local artifact on a two-node cluster: refused before deploying, one line, the fix
    local = tmp_path / "local-artifact"
    storage.download(art, local)
    r = _python(c, "jobs/deploy.py", "--artifact", str(local), "--address", c.gcs, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    line = r.stderr.strip().splitlines()[-1]
    assert "is on this node's disk" in line and "s3://" in line, r.stderr[-2000:]

    # a local run directory on a two-node cluster: a warning naming the other node, before work
    r = _python(c, "tests/cluster/_drive.py", c.gcs, "warn", str(tmp_path / "run"), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(
        r"on this node's disk; the cluster's other nodes \S+ \([0-9a-f]{8}\) do not", r.stderr
    )

    # 3b. the S3 artifact, two replicas, one on each node, both loaded from S3
    port = free_port()
    r = _python(c, "tests/cluster/_drive.py", c.gcs, "deploy", art, str(port), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    placed = json.loads(r.stdout.strip().splitlines()[-1])
    assert placed["config_artifact"] == art  # the Serve config carries the URI
    assert len(set(placed["replica_nodes"])) == 2, placed  # one replica on each node
    try:
        rows = frame.drop(columns=["label"])
        for _ in range(8):  # requests spread over both replicas; every answer is the offline one
            body = {"instances": rows.to_dict(orient="records")}  # as the offline files
            got = requests.post(f"http://127.0.0.1:{port}/predict", json=body, timeout=30)
            assert got.status_code == 200, got.text
            assert got.json()["predictions"] == [offline[i] for i in rows["id"]]
    finally:
        _python(c, "tests/cluster/_drive.py", c.gcs, "shutdown", env=env)

    # 4. a fresh head: its local copy of the run is gone; the sweep resumes from S3
    shutil.rmtree(head_cache)
    r = run_cli("tune", str(spec), "--out", run_uri, "--resume", cwd=work, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    board = storage.read_text(f"{run_uri}/leaderboard.csv").strip().splitlines()
    assert len(board) == 1 + 2, board  # the sweep's two trials, none run again
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(":")]
    assert not (REPO / "s3:").exists() and not (work / "s3:").exists()
