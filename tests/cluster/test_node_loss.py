"""Nodes die; the work goes on. On the session's shared-nothing cluster (S3 the only shared
storage), the worker node is killed outright (every process in its mount namespace, SIGKILL) while
(a) a sweep, (b) a Ray Train fit and (c) a two-replica service run on it, and a fresh worker
node (empty /tmp, /dev/shm and cache) joins. Scenario code and measurements:
tests/cluster/_node_loss.py (benchmarks/node_loss.py records the numbers). Every test leaves a
worker node running, so the session's other cluster tests run after these in any order."""

from __future__ import annotations

import time

import pytest

from tests.cluster import _node_loss

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _s3_env(monkeypatch, cluster) -> None:
    for k, v in cluster.s3.env.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def cluster(shared_nothing, monkeypatch):
    _s3_env(monkeypatch, shared_nothing)
    yield shared_nothing
    shared_nothing.ensure_worker()


@pytest.fixture(scope="module")
def trained(shared_nothing, tmp_path_factory):
    """Scenario (b), once: its S3 artifact is what (c) serves."""
    start = time.time()
    try:
        with pytest.MonkeyPatch.context() as mp:
            _s3_env(mp, shared_nothing)
            result = _node_loss.train(shared_nothing, tmp_path_factory.mktemp("train"))
    finally:
        shared_nothing.ensure_worker()
    print(f"node loss during the final fit: {time.time() - start:.1f} s")
    return result


def test_a_sweep_that_loses_a_node_still_runs_every_trial(cluster, tmp_path):
    r = _node_loss.sweep(cluster, tmp_path)
    assert r["returncode"] == 0, r["output"][-3000:]
    # exactly search.num_samples trials, every one to its end; the lost one ran again
    assert r["trials"] == r["num_samples"], r
    assert r["statuses"] == {"completed": r["num_samples"]}, r
    assert r["retried"] >= 1 and r["retry_lines"] == r["retried"], r["output"][-3000:]
    assert r["journal_clean"], "trials.jsonl holds a lost attempt's lines"
    print(f"sweep with a node lost: {r['wall_s']} s, {r['retried']} trial(s) retried")


def test_the_final_fit_resumes_from_the_s3_checkpoint_on_a_fresh_node(trained):
    r = trained
    assert r["returncode"] == 0, r["output"][-3000:]
    assert r["restarts"] >= 1 and r["epochs_trained"] == r["epochs"], r
    resumed = r["resumed_after_epoch"][0]
    # from the last checkpoint in S3, not epoch 1: the one Ray Train had registered there when
    # the node was lost (or a later one registered before the loss was noticed)
    assert r["checkpoint_seen"] <= resumed < r["epochs"], r
    assert r["restart_epochs"][0] == resumed + 1 > 1, r
    assert r["report_marks_restart"], "report.html does not mark the restart"
    assert f"resuming after epoch {resumed}" in r["output"]
    print(
        f"final fit resumed after epoch {resumed} (killed after checkpoint {r['checkpoint_seen']})"
    )


def test_serving_keeps_answering_while_a_node_is_lost_and_replaced(cluster, trained):
    assert trained["returncode"] == 0, "scenario (b) gave no artifact to serve"
    r = _node_loss.serve(cluster, trained["artifact"], trained["data"])
    assert len(set(r["replica_nodes_before"])) == 2, r  # one replica on each node
    assert r["failed_before_kill"] == 0, r
    # The head's replica answers throughout. Requests in flight on the lost replica can fail
    # (Serve's proxy does not replay them): at most one per client, and only at the kill.
    assert r["answered_while_node_down"] > 0, r
    assert r["failed_after_kill"] <= _node_loss.CLIENTS, r
    # the replica is replaced on the node that joined, and the service answers after it
    assert r["new_node"] in r["replica_nodes_at_end"] and r["replicas_running_at_end"] == 2, r
    assert r["answered_after_replacement"] > 0, r
    print(
        f"serving through a node loss: {r['failed_after_kill']} of {r['requests_after_kill']} "
        f"failed (at {r['failures_at_s']} s), longest gap {r['longest_gap_s']} s, replica "
        f"replaced {r['replaced_after_node_back_s']} s after the node was back; {r['wall_s']} s"
    )
