"""Cluster, bottom layer: connecting to Ray (token auth included) and preflight checks.

Every stage may use it. Job entry points, submission and Docker contexts sit in the top layer,
:mod:`automodel.cluster.launch`, which may use every stage; nothing here imports it.
"""

from automodel.cluster._auth import prepare_client_auth
from automodel.cluster._preflight import (
    Demand,
    NodeType,
    Supply,
    check_demands,
    check_resources,
    cluster_supply,
    launcher_node_types,
    serve_demand,
    spec_demands,
)
from automodel.cluster._runtime import ray_session
from automodel.cluster._shared import other_nodes, require_shared_artifact, warn_unshared

__all__ = [
    "Demand",
    "NodeType",
    "Supply",
    "check_demands",
    "check_resources",
    "cluster_supply",
    "launcher_node_types",
    "other_nodes",
    "prepare_client_auth",
    "ray_session",
    "require_shared_artifact",
    "serve_demand",
    "spec_demands",
    "warn_unshared",
]
