"""Cluster: connecting to Ray (token auth included), preflight checks, jobs, submission, images."""

from automodel.cluster._auth import prepare_client_auth
from automodel.cluster._docker import write_docker_context
from automodel.cluster._job import job_main
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
from automodel.cluster._submit import job_status, stop_job, submit

__all__ = [
    "Demand",
    "NodeType",
    "Supply",
    "check_demands",
    "check_resources",
    "cluster_supply",
    "job_main",
    "job_status",
    "launcher_node_types",
    "prepare_client_auth",
    "ray_session",
    "serve_demand",
    "spec_demands",
    "stop_job",
    "submit",
    "write_docker_context",
]
