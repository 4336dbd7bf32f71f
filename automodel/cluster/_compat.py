"""The private Ray calls automodel cannot avoid, in one place, for the Ray versions it is tested with.

Everything else uses public Ray APIs. Each function here names the private thing it touches and
why no public API does the job; ``tests/cluster/test_compat.py`` fails loudly on a Ray outside
``TESTED_RAY`` so that an upgrade re-checks every one of them. At run time an untested Ray only
warns (``check_ray_version``): the calls are guarded and degrade to Ray's defaults.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

# [low, high): the Ray releases this module was read against (pyproject pins the same range).
TESTED_RAY = ((2, 60), (2, 61))
# Ray reads this at import (ray._private.ray_constants.ENABLE_RAY_CLUSTER): "0" makes a node it
# starts take 127.0.0.1 as its IP, so GCS, raylet, workers and agents bind to loopback only.
# It is how Ray keeps macOS/Windows laptops local; on Linux it is the one switch that does it.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def ray_version() -> tuple[int, int]:
    import ray

    major, minor = ray.__version__.split(".")[:2]
    return int(major), int(minor)


def ray_is_tested(version: tuple[int, int] | None = None) -> bool:
    """Whether ``version`` (default: the installed Ray) is in ``TESTED_RAY``."""
    low, high = TESTED_RAY
    return low <= (version or ray_version()) < high


def check_ray_version() -> str | None:
    """Warn (and return the message) when the installed Ray is outside the tested range."""
    if ray_is_tested():
        return None
    import ray

    low, high = (".".join(map(str, v)) for v in TESTED_RAY)
    msg = (
        f"Ray {ray.__version__} is outside the range automodel is tested with (>={low},<{high}); "
        "local-only binding and cluster discovery may fall back to Ray's defaults"
    )
    warnings.warn(msg, stacklevel=2)
    return msg


@contextlib.contextmanager
def local_only_node() -> Iterator[None]:
    """Around ``ray.init(address="local")``: the node it starts binds to 127.0.0.1 only.

    Ray's own switch for this is read once at import, so this process gets the constant set for
    the duration and the processes Ray spawns (which import Ray afresh) get the variable. Both
    are restored afterwards: a later connection to a remote cluster must advertise a real IP.
    """
    from ray._private import ray_constants

    old_env, old_const = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_const
        if old_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = old_env


def local_only_for(address: str | None) -> contextlib.AbstractContextManager:
    """Around ``ray.init(address=...)``: a loopback address is a local-only node (what
    `automodel serve` and `automodel run` start), and a client must resolve it as one: without
    the switch Ray rewrites 127.0.0.1 to the machine's IP, where nothing listens."""
    if address in (None, "", "auto"):  # Ray then reads RAY_ADDRESS
        address = os.environ.get("RAY_ADDRESS", "")
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host in ("127.0.0.1", "localhost", "::1"):
        return local_only_node()
    return contextlib.nullcontext()


SERVE_LOOPBACK_HOOK = "automodel.cluster._compat.serve_loopback_hook"


def serve_loopback_hook() -> None:
    """Ray worker setup hook (``runtime_env.worker_process_setup_hook``) of `automodel serve`.

    Ray Serve 2.60 binds three sockets on every interface with no setting to change it: HAProxy's
    stats and Prometheus frontends (``bind *:PORT`` in its config template) and each replica's
    inter-deployment gRPC server (``[::]:0``). On a single-node embedded Ray they only need
    loopback; this rewrites those binds in the worker processes that render and open them. It
    also makes HAProxy buffer each request before picking a replica (``BUFFER_REQUEST``), so a
    request whose replica dies can be replayed. The patch is applied when a worker imports those
    modules (most workers never do), so worker start-up pays nothing.
    """
    import sys

    if not ray_is_tested():
        return
    for name in _LOOPBACK_PATCHES:
        if name in sys.modules:
            _LOOPBACK_PATCHES[name](sys.modules[name])
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


# HAProxy replays a request on another replica (``retry-on empty-response``) only when it holds
# the whole request when it first sends it on: otherwise it turns the replay off for that request.
# Serve's template forwards the headers as soon as they arrive, and clients that write the body
# separately (httpx, h11, most HTTP libraries) then lose the replay; when their replica died with
# the request in flight, HAProxy 2.8 closed the client's keep-alive connection without an answer
# (2-5 failed requests a SIGKILLed replica in benchmarks/serve_scaling.py). This waits for the
# body (up to ``tune.bufsize``, 16 KiB; a larger one is forwarded as before, unreplayable) first.
# It does not serialize requests: under 8 connections HAProxy's stats show 8 at the replica with
# it as without it. A whole request just never waits for its body in the replica, so the replica
# must yield once before it decides to batch (serve_apps/model.py ``infer``), or no batch forms.
# On by default; AUTOMODEL_SERVE_BUFFER_REQUESTS=0 (in the environment of `automodel serve`)
# forwards the headers at once again, without replays of those requests.
BUFFER_REQUEST = "    option http-buffer-request\n"
BUFFER_ENV = "AUTOMODEL_SERVE_BUFFER_REQUESTS"
_REDISPATCH = "    option redispatch 1\n"
# Serve's direct ingress watches every request for its client's disconnect: a second task, a
# receive proxy and an ``asyncio.wait`` a request (replica.py ``_direct_ingress_asgi``), unless the
# request carries ``x-request-disconnect-disabled: ?1``; then it awaits the handler directly. A
# prediction takes milliseconds, so cancelling one whose client left saves nothing; the watch cost
# ≈70 us of replica CPU a request (wrk, 1 connection, 1-row requests, one server, 5 s rounds
# alternating with and without the header: 708 -> 634 us mean, lower in 5 of 5 pairs; req/s +9 %).
# HAProxy sets the header on every request to a replica (a client's own value is replaced).
# AUTOMODEL_SERVE_WATCH_DISCONNECTS=1 keeps the watch.
NO_DISCONNECT_WATCH = "    http-request set-header x-request-disconnect-disabled ?1\n"
WATCH_ENV = "AUTOMODEL_SERVE_WATCH_DISCONNECTS"
_REUSE = "    # Enable HTTP connection reuse for better performance\n    http-reuse always\n"


def _loopback_haproxy(module: Any) -> None:
    template = module.HAPROXY_CONFIG_TEMPLATE.replace(
        "bind *:{{ config.stats_port }}", "bind 127.0.0.1:{{ config.stats_port }}"
    ).replace("bind :{{ config.metrics_port }}", "bind 127.0.0.1:{{ config.metrics_port }}")
    if os.environ.get(BUFFER_ENV, "1") != "0" and BUFFER_REQUEST not in template:
        template = template.replace(_REDISPATCH, _REDISPATCH + BUFFER_REQUEST, 1)
    if os.environ.get(WATCH_ENV) != "1" and NO_DISCONNECT_WATCH not in template:
        template = template.replace(_REUSE, _REUSE + NO_DISCONNECT_WATCH)
    module.HAPROXY_CONFIG_TEMPLATE = template


def _loopback_replica(module: Any) -> None:
    add_port = module.add_port_to_grpc_server
    if getattr(add_port, "_automodel_loopback", False):
        return

    def loopback_port(server: Any, address: str) -> int:
        return add_port(server, address.replace("[::]", "127.0.0.1"))

    loopback_port._automodel_loopback = True  # type: ignore[attr-defined]
    module.add_port_to_grpc_server = loopback_port


_LOOPBACK_PATCHES = {
    "ray.serve._private.haproxy": _loopback_haproxy,
    "ray.serve._private.replica": _loopback_replica,
}


class _PatchOnImport:
    """A meta-path finder that runs the patch for a module right after the module executes."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name not in _LOOPBACK_PATCHES:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader, patch = spec.loader, _LOOPBACK_PATCHES[name]

        class _Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                patch(module)

        spec.loader = _Loader()
        return spec


@contextlib.contextmanager
def trial_actors_without_runtime_env() -> Iterator[None]:
    """While a sweep runs on a local Ray this process started: Tune's trial actors get no runtime
    environment of their own, so Ray starts them like any worker.

    Tune gives every trial actor a runtime environment (ray/tune/execution/class_cache.py: a few
    variables, ``PL_DISABLE_FORK`` and those it copies from the driver), and Ray then starts each
    one through ``setup_worker.py``, a second Python process before the worker. On a local Ray
    started by this process every worker already inherits the driver's environment, so that buys
    nothing: a trivial sweep's first result came 1.3 s sooner without it on two cores (4.3-4.7 vs
    5.7-5.9 s; later waves 7.0-8.4 vs 9.0-9.4 s). Untested Ray: unchanged.
    """
    if not ray_is_tested():
        yield
        return
    from ray.tune.execution import class_cache

    cache = class_cache._ActorClassCache
    original = cache.get

    def get(self: Any, trainable_cls: Any) -> Any:
        if trainable_cls not in self._cache:
            import ray

            self._cache[trainable_cls] = ray.remote(trainable_cls)
        return self._cache[trainable_cls]

    cache.get = get
    try:
        yield
    finally:
        cache.get = original


def with_code_version(deployment: Any, version: str) -> Any:
    """``deployment`` with a fixed code version: deployed again with only a new ``user_config``
    (`automodel rollout`'s every step), Serve reconfigures the running replicas in place.

    ``serve.run`` gives a deployment without a version a random one at every call, and a new
    version restarts every replica (a rolling update: seconds to a minute per step on a loaded
    machine). ``serve deploy CONFIG`` keeps one, but needs the dashboard's REST API. Only
    ``Deployment.options``'s private ``_internal`` flag accepts a version. Untested Ray: unchanged.
    """
    if not ray_is_tested():
        return deployment
    return deployment.options(version=version, _internal=True)


def reload_ray_config() -> None:
    """Make this process re-read Ray's config after ``RAY_AUTH_MODE`` changed.

    Ray caches its config (``ray._raylet.Config``) on first use; there is no public way to
    switch an already-imported client into token mode.
    """
    import sys

    if "ray._raylet" in sys.modules:
        from ray._raylet import Config

        Config.initialize("")


def gcs_node_groups() -> list[tuple[str, dict[str, float], int]] | None:
    """Autoscaling node groups ``(name, resources, max_count)`` from the cluster config that
    autoscaler v2 (KubeRay) stores in the GCS; None when the cluster stores none.

    No public API returns it (``ray.autoscaler.v2.sdk`` reports status, not the config).
    """
    from ray._private.state import state

    config = state.get_cluster_config()
    if config is None:
        return None
    return [
        (group.name, dict(group.resources), int(group.max_count))
        for group in config.node_group_configs
    ]


def session_name() -> str | None:
    """The connected Ray session's name (``session_<date>_<pid>``), None when not connected.

    Public APIs give the node and job IDs but not the session directory name, which is what
    tells one cluster's autoscaler monitor from another's on a shared machine.
    """
    import ray

    if not ray.is_initialized():
        return None
    node = getattr(ray._private.worker.global_worker, "node", None)
    return getattr(node, "session_name", None)


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def drop_init_thread_warning() -> None:
    """Ray 2.60/2.61 warn from ``ray._private.worker`` when ``ray.init`` runs outside the main
    thread that it set no SIGTERM handler; the caller sets the same handler itself."""
    logging.getLogger("ray._private.worker").addFilter(_DropMessage("SIGTERM handler is not set"))
