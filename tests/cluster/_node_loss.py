"""Losing the worker node of the shared-nothing cluster (tests/cluster/_shared_nothing.py) while
work runs on it, then bringing a fresh one: what each scenario measured, as a dict.

- :func:`sweep`: `automodel tune` with a trial on each node; the worker node is killed while a
  trial runs there. The sweep must end with ``search.num_samples`` trials, the lost one run again.
- :func:`train`: `automodel train` of an MLP on two Ray Train workers, one on each node,
  checkpoints in S3; the worker node is killed after a checkpoint and a fresh one joins. Training
  must resume from the last checkpoint in S3, and the card and report say so.
- :func:`serve`: the S3 artifact served by two replicas, one on each node, under steady load;
  the worker node is killed and a fresh one joins. Counts the requests that failed, how long the
  service went without an answer, and how long until a replacement replica runs on the new node.

Each starts the worker node again before it returns (the session's other tests need it). The
caller puts the cluster's S3 environment (``cluster.s3.env``) into ``os.environ`` first: the
results are read from S3 with :mod:`automodel.storage`. Used by tests/cluster/test_node_loss.py
and benchmarks/node_loss.py.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import yaml

from automodel import storage
from tests.conftest import REPO, free_port

CLIENTS = 4  # concurrent clients of the serving scenario: at most this many requests in flight


def iris_in_s3(bucket: str) -> tuple[str, pd.DataFrame]:
    """Iris (features + ``label``) as a CSV in the bucket: the data every node reads."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    uri = f"s3://{bucket}/data/iris.csv"
    if not storage.exists(uri):
        storage.write_bytes(uri, frame.to_csv(index=False).encode())
    return uri, frame


def _cli(c, work: Path, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """`automodel ARGS` on the head, as a user runs it; stdout and stderr into ``work/NAME.log``."""
    log = work / f"{name}.log"
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "automodel.cli", *args],
            cwd=work,
            env=c.client_env(AUTOMODEL_CACHE=str(work / "head-cache")),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def _wait_for(what: str, check, *, timeout: float, proc: subprocess.Popen | None = None, log=None):
    """Poll ``check()`` until it returns something truthy; fail if ``proc`` ends first."""
    end = time.time() + timeout
    while time.time() < end:
        got = check()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None else ""
            raise AssertionError(f"the command ended (rc {proc.returncode}) before {what}:\n{tail}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _finish(proc: subprocess.Popen, log: Path, timeout: float) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = -9
    return rc, log.read_text()


def _actors_on(c, node_id: str) -> list[str]:
    """Class names of the live actors on ``node_id`` (Ray's state API, through the dashboard)."""
    try:
        r = requests.get(
            f"{c.url}/api/v0/actors",
            params={"limit": 10000, "detail": "true"},
            headers=c.headers(),
            timeout=10,
        )
        actors = r.json()["data"]["result"]["result"]
    except (requests.RequestException, KeyError, ValueError):
        return []
    return [a["class_name"] for a in actors if a["state"] == "ALIVE" and a["node_id"] == node_id]


def _lose_worker(c) -> dict[str, Any]:
    """Kill the worker node, start a fresh one; when each happened."""
    killed_at = time.time()
    killed = c.kill_worker()
    node = c.restart_worker()
    return {
        "killed_at": killed_at,
        "processes_killed": killed,
        "back_at": time.time(),
        "node": node,
    }


# ---- (a) a sweep ---------------------------------------------------------------------------------
def sweep(c, work: Path, *, num_samples: int = 4, max_epochs: int = 60) -> dict[str, Any]:
    """`automodel tune` into S3, the worker node lost while a trial runs on it."""
    start = time.time()
    s3 = f"s3://{c.s3.bucket()}"
    data, _ = iris_in_s3(s3[5:])
    spec = work / "sweep.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "nl-sweep",
                "data": {"source": data, "target": "label"},
                "search": {
                    "families": ["mlp"],
                    "num_samples": num_samples,
                    "max_concurrent": 2,
                    "max_epochs": max_epochs,
                    "searcher": "random",
                    "scheduler": "fifo",
                    "cpus_per_trial": 1,
                },
                "runtime": {"address": c.gcs, "storage": f"{s3}/runs"},
            }
        )
    )
    run = f"{s3}/runs/sweep"
    worker = c.worker_node_id()
    proc, log = _cli(c, work, "tune", "tune", str(spec), "--out", run)
    # a trial actor on the worker node (one CPU each node: one trial each), a moment into its run
    on_worker = _wait_for(
        "a trial on the worker node", lambda: _actors_on(c, worker), timeout=300, proc=proc, log=log
    )
    time.sleep(2.0)
    lost = _lose_worker(c)
    rc, out = _finish(proc, log, timeout=600)
    board = pd.read_csv(io.StringIO(storage.read_text(f"{run}/leaderboard.csv")))
    finished = [
        json.loads(line)
        for line in storage.read_text(f"{run}/tune/finished.jsonl").splitlines()
        if line.strip()
    ]
    journal = [json.loads(x) for x in storage.read_text(f"{run}/trials.jsonl").splitlines() if x]
    return {
        "returncode": rc,
        "output": out,
        "num_samples": num_samples,
        "trials": len(board),
        "statuses": dict(Counter(board["status"])),
        "retried": sum(f.get("failures", 0) for f in finished),
        "retry_lines": out.count("was lost"),
        # one attempt a trial in the journal: iterations 1..n once each
        "journal_clean": all(
            sorted(r["iteration"] for r in journal if r["trial_id"] == f["trial_id"])
            == list(range(1, f["iterations"] + 1))
            for f in finished
        ),
        "actors_on_worker": on_worker,
        "processes_killed": lost["processes_killed"],
        "node_back_s": round(lost["back_at"] - lost["killed_at"], 1),
        "wall_s": round(time.time() - start, 1),
    }


# ---- (b) the Ray Train final fit -------------------------------------------------------------------
SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's record of its registered checkpoints


def _last_checkpoint(prefix: str) -> int:
    """The latest epoch whose checkpoint Ray Train has registered under ``prefix`` (the one a
    restarted worker group resumes from); 0: none. Its files reach S3 before that: a checkpoint
    whose files are there but whose report the controller has not gathered is not one to resume
    from, so this reads Ray Train's own record, its checkpoint manager's snapshot."""
    try:
        names = [n for n in storage.listdir(prefix, recursive=True) if n.endswith(SNAPSHOT)]
        texts = [storage.read_text(f"{prefix}/{n}") for n in names]
    except Exception:  # the prefix or the snapshot does not exist yet
        return 0
    return max((int(e) for t in texts for e in re.findall(r"checkpoint_epoch(\d+)", t)), default=0)


def train(c, work: Path, *, epochs: int = 40, kill_after_epoch: int = 3) -> dict[str, Any]:
    """`automodel train` (MLP, 2 Ray Train workers) into S3; the worker node lost once Ray Train
    has registered the checkpoint of ``kill_after_epoch`` in S3, a fresh one started at once."""
    from automodel.contracts import Card

    start = time.time()
    s3 = f"s3://{c.s3.bucket()}"
    data, _ = iris_in_s3(s3[5:])
    spec = work / "train.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "nl-train",
                "data": {"source": data, "target": "label", "seed": 0},
                "model": {
                    "family": "mlp",
                    "params": {"hidden": 32, "layers": 1, "lr": 0.01, "batch_size": 16},
                },
                "train": {
                    "num_workers": 2,  # one CPU each: one on each node
                    "resources_per_worker": {"CPU": 1},
                    "epochs": epochs,
                    "checkpoint_every": 1,
                    "keep_checkpoints": 2,
                    "max_failures": 3,
                    "early_stopping_patience": None,
                },
                "runtime": {"address": c.gcs, "storage": f"{s3}/ckpt"},
            }
        )
    )
    run = f"{s3}/runs/train"
    proc, log = _cli(c, work, "train", "train", str(spec), "--out", run)
    seen = _wait_for(
        f"the checkpoint of epoch {kill_after_epoch} in S3",
        lambda: (e := _last_checkpoint(f"{s3}/ckpt")) >= kill_after_epoch and e,
        timeout=400,
        proc=proc,
        log=log,
    )
    lost = _lose_worker(c)
    rc, out = _finish(proc, log, timeout=600)
    result: dict[str, Any] = {"returncode": rc, "output": out, "checkpoint_seen": seen}
    if rc != 0:
        return result
    card_uri = f"{run}/artifact/card.json"
    card = Card.load(json.loads(storage.read_text(card_uri)), source=card_uri)
    html = storage.read_text(f"{run}/report.html")
    return {
        **result,
        "epochs": epochs,
        "epochs_trained": card.train.epochs,
        "restarts": card.train.restarts,
        "resumed_after_epoch": list(card.train.resumed_after_epoch),
        "restart_epochs": card.restart_epochs,
        "report_marks_restart": "restarted the workers" in html and "worker restart" in html,
        "test_metrics": dict(card.metrics.test),
        "artifact": f"{run}/artifact",
        "data": data,
        "processes_killed": lost["processes_killed"],
        "node_back_s": round(lost["back_at"] - lost["killed_at"], 1),
        "wall_s": round(time.time() - start, 1),
    }


# ---- (c) serving under load ------------------------------------------------------------------------
class Load:
    """``clients`` threads posting one request after another; every outcome with its times."""

    def __init__(self, url: str, body: dict, clients: int = CLIENTS):
        self.url, self.body = url, body
        self.results: list[tuple[float, float, bool, str]] = []  # (sent, done, ok, detail)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            sent = time.time()
            try:
                r = session.post(self.url, json=self.body, timeout=60)
                ok, detail = r.status_code == 200, f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                ok, detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            self.results.append((sent, time.time(), ok, "" if ok else detail))


def _replicas(c) -> list[dict]:
    """Every Serve replica (``state``, ``node_id``) from the dashboard's Serve API."""
    try:
        r = requests.get(f"{c.url}/api/serve/applications/", headers=c.headers(), timeout=10)
        apps = r.json().get("applications") or {}
    except (requests.RequestException, ValueError):
        return []
    return [
        rep
        for app in apps.values()
        for dep in (app.get("deployments") or {}).values()
        for rep in dep.get("replicas") or []
    ]


def serve(c, artifact: str, data: str, *, settle_s: float = 3.0) -> dict[str, Any]:
    """Two replicas of ``artifact`` (one on each node) under :data:`CLIENTS` clients; the worker
    node lost and a fresh one started at once; load goes on until the replacement replica runs
    on the new node, and ``settle_s`` after."""
    start = time.time()
    port = free_port()
    frame = pd.read_csv(io.BytesIO(storage.read_bytes(data))).drop(columns=["label"])
    body = {"instances": frame.head(1).to_dict(orient="records")}
    try:
        r = subprocess.run(
            [sys.executable, "tests/cluster/_drive.py", c.gcs, "deploy", artifact, str(port)],
            cwd=REPO, env=c.client_env(), capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        if r.returncode != 0:
            raise AssertionError(f"deploy failed:\n{r.stderr[-3000:]}")
        placed = json.loads(r.stdout.strip().splitlines()[-1])
        with Load(f"http://127.0.0.1:{port}/predict", body) as load:
            time.sleep(settle_s)
            lost = _lose_worker(c)
            node = lost["node"]
            _wait_for(
                "a replacement replica running on the new node",
                lambda: any(x["state"] == "RUNNING" and x["node_id"] == node for x in _replicas(c)),
                timeout=300,
            )
            replaced_at = time.time()
            time.sleep(settle_s)
        running = [x for x in _replicas(c) if x["state"] == "RUNNING"]
    finally:
        requests.delete(f"{c.url}/api/serve/applications/", headers=c.headers(), timeout=60)
    kill = lost["killed_at"]
    results = sorted(load.results, key=lambda x: x[1])
    before = [x for x in results if x[1] < kill]
    after = [x for x in results if x[1] >= kill]
    failed = [x for x in after if not x[2]]
    answered = [x[1] for x in after if x[2]]
    gaps = [b - a for a, b in zip([kill, *answered], answered)]
    return {
        "replica_nodes_before": placed["replica_nodes"],
        "requests_before_kill": len(before),
        "failed_before_kill": sum(not x[2] for x in before),
        "requests_after_kill": len(after),
        "failed_after_kill": len(failed),
        "failures_at_s": [round(x[1] - kill, 2) for x in failed],
        "failure_details": sorted({x[3] for x in failed})[:5],
        "answered_while_node_down": sum(1 for t in answered if t < lost["back_at"]),
        "longest_gap_s": round(max(gaps, default=float("nan")), 2),
        "node_back_s": round(lost["back_at"] - kill, 1),
        "replaced_after_node_back_s": round(replaced_at - lost["back_at"], 1),
        "replaced_after_kill_s": round(replaced_at - kill, 1),
        "answered_after_replacement": sum(1 for t in answered if t >= replaced_at),
        "replicas_running_at_end": len(running),
        "replica_nodes_at_end": sorted({x["node_id"] for x in running}),
        "new_node": node,
        "processes_killed": lost["processes_killed"],
        "wall_s": round(time.time() - start, 1),
    }


__all__ = ["CLIENTS", "Load", "iris_in_s3", "serve", "sweep", "train"]
