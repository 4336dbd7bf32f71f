"""Preflight arithmetic: spec demands against node-by-node supply, with and without autoscaling."""

from __future__ import annotations

import math

import pytest

from automodel.cluster import NodeType, Supply, check_demands, launcher_node_types, spec_demands
from automodel.errors import ResourceError
from automodel.spec import load_spec
from tests.conftest import REPO

SPECS = REPO / "tests" / "cluster" / "specs"
CLUSTER_YAML = REPO / "cluster.yaml"


def _spec(name="too_many_gpus.yaml", **train):
    spec = load_spec(str(SPECS / name))
    for key, value in train.items():
        setattr(spec.train, key, value)
    return spec


def _cluster_yaml_supply(nodes=None) -> Supply:
    return Supply(nodes or [{"CPU": 0.0}], launcher_node_types(CLUSTER_YAML), 12, "cluster.yaml")


def test_demands_follow_the_spec():
    by_stage = {d.stage: d for d in spec_demands(_spec(), ("search", "train", "serve"))}
    assert by_stage["train"].bundle == {"GPU": 1.0}  # Ray Train's default with use_gpu
    assert by_stage["train"].count == 2
    assert by_stage["search"].bundle == {"CPU": 1.0}
    assert by_stage["serve"].count == 1 and by_stage["serve"].wanted == 4


def test_resources_per_worker_lower_case_keys_win():
    spec = _spec(resources_per_worker={"cpu": 4, "gpu": 2})
    (train,) = spec_demands(spec, ("train",))
    assert train.bundle == {"CPU": 4.0, "GPU": 2.0}


def test_sklearn_only_runs_make_no_training_demand():
    spec = load_spec(str(SPECS / "tiny.yaml"))  # logistic: fitted in one process, no Ray Train
    assert [d.stage for d in spec_demands(spec, ("search", "train"))] == ["search"]


def test_gpu_demand_on_a_cpu_cluster_names_demand_and_supply():
    with pytest.raises(ResourceError) as info:
        check_demands(spec_demands(_spec()), Supply([{"CPU": 1.0}, {"CPU": 1.0}]))
    msg = str(info.value)
    assert msg.startswith("resource error: train.use_gpu:")
    assert "2 workers x {GPU: 1}" in msg and "{GPU: 2} in all" in msg
    assert "the cluster has {GPU: 0, CPU: 2} on 2 node(s)" in msg
    assert "no autoscaling node types" in msg


def test_cluster_yaml_scales_to_sixteen_gpus_from_zero():
    supply = _cluster_yaml_supply()
    assert supply.max_totals()["GPU"] == 16
    assert check_demands(spec_demands(_spec(num_workers=16)), supply) == []
    with pytest.raises(
        ResourceError, match=r"can autoscale to at most \{GPU: 16, CPU: 320\}.*room for 16"
    ):
        check_demands(spec_demands(_spec(num_workers=17)), supply)


def test_a_bundle_never_spans_nodes():
    # 16 GPUs in all, but no single node has 8: an 8-GPU worker can never be placed.
    spec = _spec(num_workers=1, resources_per_worker={"CPU": 1, "GPU": 8})
    with pytest.raises(ResourceError, match="room for 0"):
        check_demands(spec_demands(spec), _cluster_yaml_supply())


def test_global_max_workers_caps_the_autoscaler():
    supply = _cluster_yaml_supply()
    supply.max_workers = 2  # two nodes at most: 8 GPUs
    assert supply.capacity({"GPU": 1.0}) == 8
    unlimited = Supply([], [NodeType("cpu", {"CPU": 8.0}, max_workers=-1)])
    assert math.isinf(unlimited.capacity({"CPU": 1.0}))


def test_too_few_for_full_concurrency_is_a_warning_not_an_error():
    spec = load_spec(str(SPECS / "tiny.yaml"))
    spec.search.max_concurrent = 4
    spec.search.num_samples = 8
    notes = check_demands(spec_demands(spec, ("search",)), Supply([{"CPU": 3.0}]))
    assert notes == ["preflight: search: 3 of 4 trials {CPU: 1} fit at once; the rest wait"]


def test_node_types_without_resources_are_not_judged():
    supply = Supply(
        [{"CPU": 2.0}],
        launcher_node_types(
            {
                "head_node_type": "head",
                "max_workers": 4,
                "available_node_types": {
                    "head": {"resources": {}},
                    "gpu": {"resources": {}, "max_workers": 4},
                },
            }
        ),
    )
    notes = check_demands(spec_demands(_spec()), supply)
    assert any("cannot tell whether train will fit" in n for n in notes)


def test_serve_replicas_must_fit_and_extra_ones_only_warn():
    from automodel.cluster import serve_demand

    two_cpus = Supply([{"CPU": 2.0}])
    assert check_demands([serve_demand(1, 4, 1.0)], two_cpus) == [
        "preflight: serve: 2 of 4 replicas {CPU: 1} fit at once; the rest wait"
    ]
    with pytest.raises(
        ResourceError, match=r"serve.min_replicas: serve needs 3 replicas x \{CPU: 1\}"
    ):
        check_demands([serve_demand(3, 4, 1.0)], two_cpus)


def test_an_unreadable_autoscaling_config_is_named_and_refuses_nothing(tmp_path, monkeypatch):
    from automodel.cluster._preflight import CONFIG_ENV, _from_launcher_config

    broken = tmp_path / "autoscaler.yaml"
    broken.write_text("available_node_types: {gpu: {resources: {GPU: 8}, max_workers: [oops\n")
    monkeypatch.setenv(CONFIG_ENV, str(broken))
    supply = Supply([{"CPU": 2.0}])
    _from_launcher_config(supply)
    assert (
        supply.unreadable
        and str(broken) in supply.unreadable
        and "ParserError" in supply.unreadable
    )
    # 2 GPU workers do not fit the alive node, but the cluster's real shape is unknown: a note.
    notes = check_demands(spec_demands(_spec(), ("train",)), supply)
    assert len(notes) == 1 and "cannot tell whether train will fit" in notes[0], notes
    assert str(broken) in notes[0]
