"""Storage every node reaches: on a cluster of more than one node, nodes share no disk.

Cloud VMs and Kubernetes pods each have their own disk; object storage (``s3://``, ``gs://``) is
the one place all of them reach. A run directory or an artifact on this node's disk is invisible
to the others: a run warns before any work, and serving refuses before it deploys (a replica on
another node would fail to load it, again and again).
"""

from __future__ import annotations

import sys
from pathlib import Path

from automodel import storage
from automodel.errors import ArtifactError

FIX = "use object storage every node reaches (s3://..., gs://...) or an NFS path mounted on all"


def other_nodes() -> list[str]:
    """The live nodes of the connected cluster other than this one, as ``ip (node id)``;
    empty when Ray is not connected or the cluster has one node."""
    import ray

    if not ray.is_initialized():
        return []
    here = ray.get_runtime_context().get_node_id()
    return [
        f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})"
        for n in ray.nodes()
        if n.get("Alive") and n["NodeID"] != here
    ]


def warn_unshared(run_dir: str | Path) -> None:
    """Warn (one line, stderr) when a run directory on this node's disk meets other nodes."""
    if storage.remote_of(run_dir) is not None:
        return
    others = other_nodes()
    if others:
        print(
            f"warning: run directory {run_dir} is on this node's disk; the cluster's other "
            f"nodes {', '.join(others)} do not see it (the head's disk is not shared, and a new "
            f"head starts empty): set runtime.storage or --out to a URI — {FIX}",
            file=sys.stderr,
            flush=True,
        )


def require_shared_artifact(location: str | Path, what: str = "serve") -> None:
    """Refuse a local artifact when the cluster has other nodes (before anything deploys).

    Raises:
        ArtifactError: one line naming the nodes and the fix.
    """
    if storage.is_uri(location):
        return
    others = other_nodes()
    if others:
        raise ArtifactError(
            f"{what}: artifact {location} is on this node's disk, and replicas on the cluster's "
            f"other nodes {', '.join(others)} could not load it; copy it to object storage "
            f"(e.g. `aws s3 cp --recursive {location} s3://BUCKET/models/NAME`) and {what} the "
            "URI"
        )
