"""Autoscaling with Ray's fake multi-node provider: cluster.yaml's GPU node type, scaled up by a job.

The head starts with no GPU (and no CPU for work, as in cluster.yaml). A sweep job whose trials ask
for a GPU passes preflight only because the autoscaler may add GPU nodes (preflight finds the
config the cluster's autoscaler runs with), and then runs: the autoscaler launches a (fake)
`gpu_worker` node with cluster.yaml's resources and the trials run there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.cluster.test_two_node import (
    _free_ports,
    _kill_strays,
    _node_ports,
    _quiet,
    _worker_port_range,
)
from tests.conftest import REPO

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _fake_config(gcs: str) -> dict:
    """cluster.yaml's worker types on the fake provider (one GPU node at most: this machine is small)."""
    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    gpu = raw["available_node_types"]["gpu_worker"]
    return {
        "cluster_name": "automodel-fake",
        "max_workers": 1,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 1,
        # The fake provider starts nodes itself: no SSH updater, no launch-config hash check.
        "provider": {"type": "fake_multinode", "gcs_address": gcs, "disable_node_updaters": True,
                     "disable_launch_config_check": True},
        "auth": {"ssh_user": "ray"},
        "head_node_type": "ray.head.default",  # the fake provider's fixed name for the head
        "available_node_types": {
            "ray.head.default": {"resources": raw["available_node_types"]["head"]["resources"], "node_config": {},
                                 "max_workers": 0},
            "gpu_worker": {"resources": gpu["resources"], "node_config": {}, "min_workers": 0, "max_workers": 1},
        },
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }  # fmt: skip


@pytest.fixture(scope="module")
def fake_cluster():
    base = Path(tempfile.mkdtemp(prefix="amf-", dir="/tmp"))
    token = base / "auth_token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    gcs_port, client_port, dash_port = _free_ports(3)
    gcs, url = f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}"
    config = base / "autoscaling.yaml"
    config.write_text(json.dumps(_fake_config(gcs)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_FAKE_CLUSTER="1",
        AUTOSCALER_UPDATE_INTERVAL_S="1",
        # Fake nodes get their own temp root: a node sharing the head's would reset its
        # runtime_resources (the job's working directory) when its agent starts.
        RAY_TMPDIR=str(base / "nodes"),
    )
    log = open(base / "head.log", "w")  # noqa: SIM115 - closed with the process
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={gcs_port}", f"--ray-client-server-port={client_port}",
         f"--dashboard-port={dash_port}", "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1",
         f"--temp-dir={base / 'ray'}", "--num-cpus=0", "--object-store-memory=200000000",
         f"--autoscaling-config={config}", *_node_ports(_worker_port_range())],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    c = {
        "url": url,
        "token": token,
        "headers": {"Authorization": f"Bearer {token.read_text()}"},
        "base": base,
    }
    end = time.time() + 120
    while time.time() < end and head.poll() is None and not _nodes(c):
        time.sleep(1)
    yield c
    with _quiet():
        os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=5)  # a graceful drain is not needed here
    except subprocess.TimeoutExpired:
        pass
    with _quiet():
        os.killpg(head.pid, signal.SIGKILL)
    _kill_strays(base)
    shutil.rmtree(base, ignore_errors=True)


def _nodes(c) -> list[dict]:
    try:
        r = requests.get(f"{c['url']}/api/v0/nodes?detail=true", headers=c["headers"], timeout=10)
        return [n for n in r.json()["data"]["result"]["result"] if n["state"] == "ALIVE"]
    except (requests.RequestException, KeyError, ValueError):
        return []


def test_gpu_sweep_scales_up_a_gpu_worker_from_cluster_yaml(fake_cluster, tmp_path):
    assert [n["resources_total"].get("GPU", 0) for n in _nodes(fake_cluster)] == [0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(fake_cluster["token"]))
    # No --working-dir: fake nodes share the head's session directory, and a node that unpacks
    # the same working-dir package replaces the driver's current directory under it. The code
    # comes from the installed (editable) automodel instead.
    cmd = ["ray", "job", "submit", "--address", fake_cluster["url"], "--", sys.executable,
           str(REPO / "jobs" / "sweep.py"), "--spec", str(REPO / "tests" / "cluster" / "specs" / "gpu_sweep.yaml"),
           "--out", str(tmp_path / "run")]  # fmt: skip
    start = time.time()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    text = res.stdout + res.stderr
    assert res.returncode == 0 and "succeeded" in text.lower(), text[-4000:]
    assert (
        "preflight ok" in text
    )  # 2 GPU trials on a cluster with 0 GPUs: the autoscaler can add them
    gpus = sorted(n["resources_total"].get("GPU", 0) for n in _nodes(fake_cluster))
    assert gpus == [0, 4], gpus  # the head, and one gpu_worker with cluster.yaml's 4 GPUs
    rows = (tmp_path / "run" / "leaderboard.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + 2 trials, run on the scaled-up GPU node
    print(f"fake autoscaling: GPU sweep with scale-up from zero in {time.time() - start:.1f} s")
