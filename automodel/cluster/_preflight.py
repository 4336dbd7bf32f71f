"""Preflight: does the cluster have, or can it autoscale to, what the spec asks for?

Ray waits forever for resources that cannot appear (a placement group for 8 GPU workers on a
CPU-only cluster stays pending, the job never ends). Preflight compares the spec's demands with the
cluster's supply before any work starts and raises :class:`ResourceError` naming both.

Demands are *bundles* (what one worker, trial or replica needs) times a *count*:

- train: ``train.num_workers`` bundles of ``train.resources_per_worker`` (default, as in Ray
  Train: ``{GPU: 1}`` with ``use_gpu``, else ``{CPU: 1}``), all at once: Ray Train gangs them in a
  placement group;
- search: one trial of ``{CPU: cpus_per_trial, GPU: gpus_per_trial}`` must fit; fewer than
  ``max_concurrent`` at once only slows the sweep (a warning);
- serve: ``serve.min_replicas`` replicas of ``{CPU: serve.num_cpus}`` must fit; fewer than
  ``max_replicas`` caps autoscaling (a warning).

Supply is counted in bundles, node by node (a bundle never spans nodes): the nodes alive now, or
the largest cluster the autoscaler may build (node types × ``max_workers``), whichever holds more.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from automodel.errors import ResourceError

STAGES = ("search", "train", "serve")
# On a head started by `ray up`, the autoscaler's resolved config lives here.
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
CONFIG_ENV = "AUTOMODEL_AUTOSCALING_CONFIG"


@dataclass(frozen=True)
class Demand:
    """``count`` bundles needed at once (``wanted`` for full speed) by one stage of the spec."""

    stage: str
    key: str
    what: str
    bundle: dict[str, float]
    count: int
    wanted: int
    hint: str


@dataclass(frozen=True)
class NodeType:
    """An autoscaling node type: what one node offers and how many may exist (-1: no limit)."""

    name: str
    resources: dict[str, float]
    max_workers: int
    head: bool = False


@dataclass
class Supply:
    """What a cluster offers: per-node resources now, and its autoscaling node types."""

    nodes: list[dict[str, float]]
    node_types: list[NodeType] = field(default_factory=list)
    max_workers: int | None = None
    source: str = "alive nodes"
    # Why the autoscaling node types could not be read (then nothing is refused for lack of room).
    unreadable: str | None = None

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for node in self.nodes:
            for key, value in node.items():
                out[key] = out.get(key, 0.0) + value
        return out

    def max_totals(self) -> dict[str, float] | None:
        """Resources of the largest cluster the autoscaler may build; None without node types."""
        if not self.node_types:
            return None
        keys = {k for t in self.node_types for k in t.resources}
        return {key: self._scaled(lambda res, key=key: res.get(key, 0.0)) for key in keys}

    def _scaled(self, amount) -> float:
        """Most of ``amount(resources)`` over the largest cluster: the head plus the best workers."""
        head = sum(amount(t.resources) for t in self.node_types if t.head)
        workers = sorted(
            ((amount(t.resources), t.max_workers) for t in self.node_types if not t.head),
            reverse=True,
        )
        return head + _greedy(workers, self.max_workers)

    def unknown_types(self) -> list[str]:
        """Worker types that may scale but declare no resources (the cloud fills them in later)."""
        return [t.name for t in self.node_types if not t.resources and t.max_workers and not t.head]

    def capacity(self, bundle: Mapping[str, float]) -> float:
        """How many ``bundle`` fit at once, node by node (``inf`` when autoscaling is unbounded)."""
        now = sum(_fit(node, bundle) for node in self.nodes)
        if not self.node_types:
            return now
        return max(now, self._scaled(lambda res: _fit(res, bundle)))


def _fit(node: Mapping[str, float], bundle: Mapping[str, float]) -> float:
    counts = [math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0]
    return min(counts) if counts else math.inf


def _greedy(per_node: Iterable[tuple[float, int]], cap: int | None) -> float:
    """Most of something from node types (amount per node, max nodes), at most ``cap`` nodes."""
    total, left = 0.0, math.inf if cap is None or cap < 0 else cap
    for amount, count in per_node:
        if amount <= 0 or left <= 0:
            break
        n = left if count < 0 else min(count, left)
        if math.isinf(n):
            return math.inf
        total += amount * n
        left -= n
    return total


def _norm(resources: Mapping[str, float]) -> dict[str, float]:
    """Spec keys may be lower case (``cpu``, ``gpu``); Ray's are ``CPU`` and ``GPU``."""
    return {
        (k.upper() if k.lower() in ("cpu", "gpu") else k): float(v) for k, v in resources.items()
    }


def _uses_torch(families: Iterable[str]) -> bool:
    from automodel.spec._families import uses_torch

    return uses_torch(families)


def spec_demands(spec, stages: Iterable[str] = ("search", "train")) -> list[Demand]:
    """What running ``stages`` of ``spec`` asks of the cluster."""
    stages = tuple(stages)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"stages must be among {STAGES}, got {sorted(unknown)}")
    out: list[Demand] = []
    if "search" in stages:
        s = spec.search
        bundle = {
            "CPU": s.cpus_per_trial,
            **({"GPU": s.gpus_per_trial} if s.gpus_per_trial else {}),
        }
        out.append(
            Demand(
                "search",
                "search.gpus_per_trial" if s.gpus_per_trial else "search.cpus_per_trial",
                "trial",
                bundle,
                1,
                min(s.max_concurrent, s.num_samples),
                "lower search.cpus_per_trial / search.gpus_per_trial",
            )
        )
    # Ray Train runs torch families only; scikit-learn ones fit in one process on the driver side.
    # search.families None: chosen from the data's shape later, and it may include torch families
    families = [spec.model.family] if spec.model.family else (spec.search.families or ["mlp"])
    if "train" in stages and _uses_torch(families):
        t = spec.train
        # Ray Train's own defaults (ScalingConfig): {GPU: 1} with use_gpu, else {CPU: 1}.
        bundle = {k: v for k, v in _norm(t.resources_per_worker).items() if v} or (
            {"GPU": 1.0} if t.use_gpu else {"CPU": 1.0}
        )
        if t.use_gpu:
            bundle.setdefault("GPU", 1.0)
        key = "train.use_gpu" if bundle.get("GPU") else "train.num_workers"
        out.append(
            Demand(
                "train",
                key,
                "worker",
                bundle,
                # "auto" fits in one process or takes the workers the cluster offers: >= 1 must fit
                t.num_workers if isinstance(t.num_workers, int) else 1,
                t.num_workers if isinstance(t.num_workers, int) else 1,
                "lower train.num_workers or train.resources_per_worker"
                + (", or set train.use_gpu: false" if t.use_gpu else ""),
            )
        )
    if "serve" in stages:
        v = spec.serve
        out.append(serve_demand(v.min_replicas, v.max_replicas, v.num_cpus))
    return out


def serve_demand(min_replicas: int, max_replicas: int, num_cpus: float) -> Demand:
    """What a Serve deployment asks: ``min_replicas`` replicas must fit, ``max_replicas`` may.

    For callers that hold serve settings rather than a spec (an artifact's card):
    ``check_demands([serve_demand(...)], cluster_supply())``.
    """
    return Demand(
        "serve",
        "serve.min_replicas",
        "replica",
        {"CPU": float(num_cpus)},
        max(int(min_replicas), 1),
        int(max_replicas),
        "lower serve.min_replicas or serve.num_cpus",
    )


def check_demands(demands: list[Demand], supply: Supply) -> list[str]:
    """Raise :class:`ResourceError` for a demand the cluster can never meet; return warnings."""
    notes: list[str] = []
    for d in demands:
        cap = supply.capacity(d.bundle)
        if cap < d.count and supply.unreadable:
            notes.append(
                f"preflight: cannot tell whether {d.stage} will fit: {supply.unreadable}; the alive "
                f"nodes have room for {_fmt_int(cap)} of {d.count} {d.what}(s) {_fmt(d.bundle)}"
            )
            continue
        if cap < d.count and supply.unknown_types():
            notes.append(
                f"preflight: node types {', '.join(supply.unknown_types())} declare no resources "
                f"({supply.source}); cannot tell whether {d.stage} will fit"
            )
            continue
        if cap < d.count:
            raise ResourceError(_message(d, supply, cap))
        if cap < d.wanted:
            notes.append(
                f"preflight: {d.stage}: {_fmt_int(cap)} of {d.wanted} {d.what}s "
                f"{_fmt(d.bundle)} fit at once; the rest wait"
            )
    return notes


def _message(d: Demand, supply: Supply, cap: float) -> str:
    need = {k: v * d.count for k, v in d.bundle.items()}
    total = f"{_fmt(need)} in all" if d.count > 1 else _fmt(need)
    now = supply.totals()
    keys = list(dict.fromkeys([*d.bundle, "CPU", "GPU"]))
    have = (
        f"the cluster has {_fmt({k: now.get(k, 0.0) for k in keys})} on {len(supply.nodes)} node(s)"
    )
    most = supply.max_totals()
    if most is not None:
        have += f" and can autoscale to at most {_fmt({k: most.get(k, 0.0) for k in keys})} ({supply.source})"
    else:
        have += " and no autoscaling node types were found"
    what = d.what if d.count == 1 else f"{d.what}s"
    return (
        f"resource error: {d.key}: {d.stage} needs {d.count} {what} x {_fmt(d.bundle)} at once "
        f"({total}); {have}, room for {_fmt_int(cap)}. Fix: {d.hint}, or give the cluster more nodes "
        "(cluster.yaml available_node_types)."
    )


def _fmt(resources: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {_fmt_int(v)}" for k, v in resources.items()) + "}"


def _fmt_int(v: float) -> str:
    return "unlimited" if math.isinf(v) else (str(int(v)) if float(v).is_integer() else f"{v:g}")


# --------------------------------------------------------------------------- supply discovery


def cluster_supply() -> Supply:
    """The connected cluster's supply: alive nodes plus autoscaling node types, where discoverable.

    Node types come from the cluster config Ray's autoscaler v2 (KubeRay) stores in the GCS, else
    from the autoscaling config file: ``$AUTOMODEL_AUTOSCALING_CONFIG``, the one this cluster's
    autoscaler runs with, or ``~/ray_bootstrap_config.yaml`` (on the head of a `ray up` cluster,
    where jobs run). Without any, the alive nodes are the supply.
    """
    import ray

    nodes = [_norm(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    supply = Supply(nodes)
    _from_gcs_config(supply)
    if not supply.node_types:
        _from_launcher_config(supply)
    return supply


def _from_gcs_config(supply: Supply) -> None:
    from ray.exceptions import RaySystemError, RpcError

    from automodel.cluster._compat import gcs_node_groups

    try:
        groups = gcs_node_groups()
    except (
        RpcError,
        RaySystemError,
        ConnectionError,
        TimeoutError,
        ImportError,
        AttributeError,
    ) as exc:
        supply.unreadable = f"reading the cluster config from the GCS failed ({_one_line(exc)})"
        return
    for name, resources, max_count in groups or []:
        supply.node_types.append(NodeType(name, _norm(resources), max_count))
    if groups:
        supply.source = "GCS cluster config"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _from_launcher_config(supply: Supply) -> None:
    path = _autoscaling_config_path()
    if path is None:
        return
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
        supply.node_types.extend(launcher_node_types(config))
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        # A broken config must not read as "no autoscaling": that would refuse what could run.
        supply.unreadable = f"the autoscaling config {path} cannot be read ({_one_line(exc)})"
        return
    supply.max_workers = config.get("max_workers")
    supply.source = str(path)


def _autoscaling_config_path() -> Path | None:
    """``$AUTOMODEL_AUTOSCALING_CONFIG``, else the config this cluster's autoscaler was started
    with (its monitor process runs beside the job drivers, on the head), else the launcher's
    ``~/ray_bootstrap_config.yaml``."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    path = _monitor_config_path()
    if path is None:
        path = Path(BOOTSTRAP_CONFIG).expanduser()
    return path if path.is_file() else None


def _monitor_config_path() -> Path | None:
    # One machine may run several clusters: take the monitor of the session we are connected to.
    import psutil

    from automodel.cluster._compat import session_name

    session = session_name()
    if session is None:  # not connected: fall back to the launcher's path
        return None
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if not any(arg.endswith("monitor.py") for arg in cmd[:3]):
            continue
        args = dict(a.split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
        # The autoscaler's monitor logs to <session dir>/logs.
        if Path(args.get("--logs-dir", "")).parent.name == session and args.get(
            "--autoscaling-config"
        ):
            return Path(args["--autoscaling-config"]).expanduser()
    return None


def launcher_node_types(config: str | Path | Mapping) -> list[NodeType]:
    """Node types of a cluster launcher config (``cluster.yaml``): the head counts as one node."""
    import yaml

    if not isinstance(config, Mapping):
        config = yaml.safe_load(Path(config).read_text())
    head = config.get("head_node_type")
    out = []
    for name, node in (config.get("available_node_types") or {}).items():
        count = 1 if name == head else int(node.get("max_workers", config.get("max_workers", 0)))
        out.append(NodeType(name, _norm(node.get("resources") or {}), count, head=name == head))
    return out


def check_resources(
    spec,
    stages: Iterable[str] = ("search", "train"),
    *,
    supply: Supply | None = None,
    only_remote: bool = False,
) -> list[str]:
    """Preflight ``spec`` against the connected cluster (or ``supply``) before any work starts.

    Args:
        spec: the validated spec.
        stages: which of "search", "train", "serve" will run.
        supply: the cluster's supply; default: discovered from the connected Ray.
        only_remote: skip (return []) when ``spec.runtime.address`` is unset (embedded local Ray).

    Returns:
        warnings (also issued with :func:`warnings.warn`) for demands that fit but not at full speed.

    Raises:
        ResourceError: a demand that the cluster cannot meet even fully scaled up.
    """
    if only_remote and spec.runtime.address is None:
        return []
    notes = check_demands(spec_demands(spec, stages), supply or cluster_supply())
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return notes
