"""The private Ray calls live in one module, for the Ray versions they were read against.

``test_installed_ray_is_a_tested_version`` fails on a Ray upgrade on purpose: re-check each
function of automodel/cluster/_compat.py against the new release, then widen TESTED_RAY and the
pin in pyproject.toml together.
"""

from __future__ import annotations

import re

import ray
import tomllib

from automodel.cluster import _compat
from tests.conftest import REPO


def test_installed_ray_is_a_tested_version():
    assert _compat.ray_is_tested(), (
        f"Ray {ray.__version__} is outside TESTED_RAY {_compat.TESTED_RAY}: re-check every "
        "function in automodel/cluster/_compat.py against it, then widen TESTED_RAY and pyproject"
    )
    assert _compat.check_ray_version() is None


def test_pyproject_pins_the_tested_range():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_dep = next(d for d in deps if d.startswith("ray["))
    (lo_major, lo_minor), (hi_major, hi_minor) = _compat.TESTED_RAY
    assert ray_dep.endswith(f">={lo_major}.{lo_minor},<{hi_major}.{hi_minor}"), ray_dep


def test_private_ray_names_appear_only_in_the_compat_module():
    pattern = re.compile(r"_private|_raylet|\._ot_study|_brackets")
    hits = []
    for folder in ("automodel", "serve_apps", "jobs"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == REPO / "automodel" / "cluster" / "_compat.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_what_the_compat_module_touches_still_exists():
    """Each private name, as this Ray spells it: a rename fails here, not in a user's run."""
    from ray._private import ray_constants
    from ray._private.state import state
    from ray._raylet import Config
    from ray.serve._private import haproxy, replica

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)
    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == _compat.LOCAL_ONLY_ENV
    assert callable(state.get_cluster_config) and callable(Config.initialize)
    assert "bind *:{{ config.stats_port }}" in haproxy.HAPROXY_CONFIG_TEMPLATE
    assert "bind :{{ config.metrics_port }}" in haproxy.HAPROXY_CONFIG_TEMPLATE
    assert callable(replica.add_port_to_grpc_server)
    from ray.tune.execution.class_cache import _ActorClassCache

    assert callable(_ActorClassCache.get) and isinstance(_ActorClassCache()._cache, dict)


def test_trial_actors_get_no_runtime_env_only_inside_the_context():
    """On a local Ray this process started, Tune's trial actors start as plain workers (no
    setup_worker.py process first); outside the sweep Tune's own registration is back."""
    from ray.tune.execution.class_cache import _ActorClassCache

    class Trainable:
        pass

    with _compat.trial_actors_without_runtime_env():
        plain = _ActorClassCache().get(Trainable)
    assert not plain._default_options.get("runtime_env")
    tuned = _ActorClassCache().get(Trainable)
    assert tuned._default_options["runtime_env"]["env_vars"]["PL_DISABLE_FORK"] == "1"


def test_local_only_node_restores_what_it_changed(monkeypatch):
    from ray._private import ray_constants

    monkeypatch.delenv(_compat.LOCAL_ONLY_ENV, raising=False)
    before = ray_constants.ENABLE_RAY_CLUSTER
    with _compat.local_only_node():
        assert ray_constants.ENABLE_RAY_CLUSTER is False
        assert ray._private.services.get_node_ip_address() == "127.0.0.1"
    assert ray_constants.ENABLE_RAY_CLUSTER == before
    assert _compat.LOCAL_ONLY_ENV not in __import__("os").environ


def test_a_loopback_address_is_joined_as_a_local_only_node(monkeypatch):
    from ray._private import ray_constants

    for address in ("127.0.0.1:6379", "ray://localhost:10001", "auto"):
        monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
        with _compat.local_only_for(address):
            assert ray_constants.ENABLE_RAY_CLUSTER is False, address
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    before = ray_constants.ENABLE_RAY_CLUSTER
    for address in ("10.1.2.3:6379", "auto"):
        with _compat.local_only_for(address):
            assert ray_constants.ENABLE_RAY_CLUSTER == before, address
