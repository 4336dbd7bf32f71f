"""Nodes die; the work goes on: the three node-loss scenarios of tests/cluster/test_node_loss.py,
once each, on a fresh shared-nothing cluster (a head, and a worker node in its own mount namespace
with private /tmp and /dev/shm; a local S3 endpoint the only storage both reach).

(a) `automodel tune` (4 MLP trials, one CPU each: one trial on each node) loses the worker node
while a trial runs there; (b) `automodel train` (MLP, 2 Ray Train workers, one on each node,
checkpoints in S3) loses it after the checkpoint of epoch 3 and a fresh node joins; (c) two
replicas of (b)'s S3 artifact, one on each node, under 4 closed-loop clients, lose it and a fresh
node joins. The baseline is the uninterrupted run: the sweep must still end with
``search.num_samples`` trials, the fit must not restart from epoch 1, the service must answer.

    python benchmarks/node_loss.py [--no-write]

Needs root (``unshare --mount``); writes section ``node_loss`` of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import table, write_section  # noqa: E402
from tests.cluster import _node_loss, _shared_nothing  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    reason = _shared_nothing.why_not()
    if reason is not None:
        sys.exit(f"node_loss: cannot start the shared-nothing cluster: {reason}")
    loads = [os.getloadavg()[0]]
    cluster = _shared_nothing.start()
    os.environ.update(cluster.s3.env)
    work = Path(tempfile.mkdtemp(prefix="amnl-"))
    results: dict[str, dict] = {}
    try:
        for name, run in (
            ("sweep", lambda d: _node_loss.sweep(cluster, d)),
            ("train", lambda d: _node_loss.train(cluster, d)),
            (
                "serve",
                lambda d: _node_loss.serve(
                    cluster, results["train"]["artifact"], results["train"]["data"]
                ),
            ),
        ):
            (work / name).mkdir()
            results[name] = run(work / name)
            loads.append(os.getloadavg()[0])
            cluster.ensure_worker()
            shown = {k: v for k, v in results[name].items() if k != "output"}
            print(name, json.dumps(shown, default=str), flush=True)
    finally:
        _shared_nothing.stop(cluster)
    a, b, c = results["sweep"], results["train"], results["serve"]
    rows = [
        [
            "(a) sweep, node lost during a trial",
            f"{a['trials']} of {a['num_samples']} trials ({a['statuses']}); "
            f"{a['retried']} trial(s) retried from their start",
            a["wall_s"],
        ],
        [
            "(b) Ray Train fit, node lost after checkpoint "
            f"{b['checkpoint_seen']}, fresh node {b['node_back_s']} s later",
            f"resumed after epoch {b['resumed_after_epoch']} (restart epochs "
            f"{b['restart_epochs']}, {b['restarts']} restart(s)), {b['epochs_trained']} of "
            f"{b['epochs']} epochs; report marks it: {b['report_marks_restart']}",
            b["wall_s"],
        ],
        [
            f"(c) 2 replicas under {_node_loss.CLIENTS} clients, node lost, fresh node "
            f"{c['node_back_s']} s later",
            f"{c['failed_after_kill']} failed of {c['requests_after_kill']} requests after the "
            f"kill (at {c['failures_at_s']} s); {c['answered_while_node_down']} answered while "
            f"the node was down; longest gap {c['longest_gap_s']} s; replacement replica "
            f"running {c['replaced_after_node_back_s']} s after the node was back "
            f"({c['replaced_after_kill_s']} s after the kill)",
            c["wall_s"],
        ],
    ]
    failed = "; ".join(c["failure_details"]) or "none"
    met = (
        a["trials"] == a["num_samples"]
        and b["resumed_after_epoch"][:1] != [0]
        and c["failed_after_kill"] == 0
    )
    notes = (
        f"One run of each scenario, {time.strftime('%H:%M UTC', time.gmtime())}. Load average "
        f"(1 min) before and after each scenario: {', '.join(f'{x:.1f}' for x in loads)}. "
        f"Node death is detected by the GCS after 5 missed 1 s health checks (Ray's default is "
        f"5 x 3 s). What the failed requests got: {failed}. "
        f"Goal (every trial, resume not from epoch 1, no failed request): "
        f"{'met' if met else 'not met'}."
    )
    body = notes + "\n\n" + table(["scenario", "what happened", "wall s"], rows)
    if not args.no_write:
        write_section("node_loss", "Node loss on a shared-nothing cluster", body)
    print(body)


if __name__ == "__main__":
    main()
