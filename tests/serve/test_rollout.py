"""`automodel rollout` on a running `automodel serve` under load: shadow, canary steps, decision.

One server (one replica, version 1 of a digits model) is shared by the module. Four new versions
are rolled out in turn while 4 connections keep POSTing: one 20x slower (made slow on purpose:
extra matrix products in its ONNX graph), one predicting a constant class, one failing every
request (an impossible Reshape), each rolled back; then a good one, promoted. Every rollout must
cost the clients no failed request, print the reason, record it in rollout.json, and leave the
right version answering.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from automodel.spec import Spec
from tests.serve.conftest import (
    Load,
    Server,
    altered,
    digits_rows,
    make_artifact,
    rename_output,
)
from tests.serve.conftest import slow_graph as slow

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STEP_S = "2"


def constant(graph, out, helper, numpy_helper) -> None:
    """Always the same class: the output times 0 plus a fixed probability row."""
    n = out.type.tensor_type.shape.dim[1].dim_value
    row = np.zeros((1, n), dtype=np.float32)
    row[0, 3] = 1.0
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero"),
            numpy_helper.from_array(row, "row"),
        ]
    )
    nodes = [
        helper.make_node("Mul", ["orig_out", "zero"], ["z"]),
        helper.make_node("Add", ["z", "row"], ["const_out"]),
    ]
    rename_output(graph, out, helper, nodes, "const_out")


def failing(graph, out, helper, numpy_helper) -> None:
    """Every run fails: the (n, classes) output reshaped to (n, classes + 1)."""
    n = out.type.tensor_type.shape.dim[1].dim_value
    graph.initializer.append(numpy_helper.from_array(np.array([0, n + 1], dtype=np.int64), "shp"))
    nodes = [helper.make_node("Reshape", ["orig_out", "shp"], ["bad_out"])]
    rename_output(graph, out, helper, nodes, "bad_out")


@pytest.fixture(scope="module")
def live(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("rollout")
    v1, data = make_artifact(
        root / "v1", Spec(name="digits"), "logistic", {"C": 1.0}, dataset=digits
    )
    v2, _ = make_artifact(
        root / "v2", Spec(name="digits"), "logistic", {"C": 1.0}, dataset=digits, version=2
    )
    server = Server(v1.path, "--replicas", "1")
    try:
        yield server, root, v1, v2, data
    finally:
        server.kill()


def _rollout(
    server: Server, artifact: Path, record: Path, *extra: str
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "automodel.cli",
        "rollout",
        str(artifact),
        "--app",
        "digits",
        "--address",
        server.ray_address,
        "--step-seconds",
        STEP_S,
        "--record",
        str(record),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _under_load(server: Server, data, run) -> tuple[subprocess.CompletedProcess, list]:
    body = json.dumps({"features": digits_rows(data, 1)}).encode()
    load = Load(f"{server.url}/predict", body, conns=4)
    time.sleep(1)
    try:
        proc = run()
    finally:
        results = load.stop()
    return proc, results


def _serves(server: Server, data, version: str) -> None:
    r = httpx.post(f"{server.url}/predict", json={"features": digits_rows(data, 5)}, timeout=10)
    assert r.status_code == 200 and r.json()["version"] == version, r.text


def _check_rollback(server, root, data, name, change, version, reason_start, *extra):
    bad = altered(root / "v1", root / name, version, change)
    record = root / f"{name}.json"
    proc, results = _under_load(server, data, lambda: _rollout(server, bad, record, *extra))
    failed = [r for r in results if r[1] != 200]
    print(
        f"\n[{name}] {len(results)} requests, {len(failed)} failed\n{proc.stdout}{proc.stderr[-2000:]}"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert results and not failed, failed[:5]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("rolled back"))
    assert f": {reason_start}" in line, line
    rec = json.loads(record.read_text())
    assert rec["decision"] == "rollback" and rec["reason"].startswith(reason_start)
    assert rec["phase"] == "rolled back" and rec["steps"]
    _serves(server, data, "1")
    return rec


def test_slow_version_is_rolled_back_on_latency(live):
    server, root, v1, v2, data = live
    rec = _check_rollback(server, root, data, "slow", slow, 11, "latency")
    c = rec["steps"][-1]["comparison"]
    assert c["p50_ratio"] > 2.0, c


def test_constant_version_is_rolled_back_on_agreement(live):
    server, root, v1, v2, data = live
    rec = _check_rollback(server, root, data, "constant", constant, 12, "agreement")
    assert rec["steps"][-1]["comparison"]["agreement"] < 0.5


def test_failing_version_is_rolled_back_with_no_failed_client_request(live):
    server, root, v1, v2, data = live
    # No shadow window: the 5 % canary step itself, where each request the candidate fails is
    # answered by the stable version.
    rec = _check_rollback(
        server, root, data, "failing", failing, 13, "error rate", "--shadow-seconds", "0"
    )
    assert [(s["phase"], s["weight"]) for s in rec["steps"]] == [("canary", 5.0)]
    assert rec["steps"][-1]["comparison"]["error_rate"] == 1.0


def test_good_version_is_shadowed_canaried_and_promoted(live):
    server, root, v1, v2, data = live
    record = root / "good.json"
    proc, results = _under_load(
        server, data, lambda: _rollout(server, v2.path, record, "--steps", "25,100")
    )
    failed = [r for r in results if r[1] != 200]
    versions = {r[2] for r in results if r[1] == 200}
    print(
        f"\n[good] {len(results)} requests, {len(failed)} failed\n{proc.stdout}{proc.stderr[-2000:]}"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results and not failed, failed[:5]
    assert versions == {"1", "2"}  # the canary answered part of the traffic, then all of it
    assert "promoted version 2" in proc.stdout
    rec = json.loads(record.read_text())
    assert rec["decision"] == "promote"
    assert [(s["phase"], s["weight"]) for s in rec["steps"]] == [
        ("shadow", 0.0),
        ("canary", 25.0),
        ("canary", 100.0),
    ]
    assert all(s["comparison"]["agreement"] >= 0.9 for s in rec["steps"])
    _serves(server, data, "2")
    status = subprocess.run(
        [sys.executable, "-m", "automodel.cli", "rollout", "--status", "--record", str(record)],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0 and "promoted" in status.stdout
    assert "version 2 100%" in status.stdout and "latest comparison (canary 100%)" in status.stdout
