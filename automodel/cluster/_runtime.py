"""Connecting to Ray: an embedded local instance by default, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

from automodel.errors import ClusterError
from automodel.spec import RuntimeSpec

# Tune writes CSV/JSON/TensorBoard logs per trial by default; automodel keeps its own leaderboard
# and history, and on 2 cores those loggers are a measurable share of each trial's overhead.
# Tune reads this variable when a sweep starts (there is no argument for it); a session sets it
# for its duration unless the user did.
TUNE_LOGGERS_ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
# Without those loggers Tune warns once a trial that result.json is missing; the results are
# complete in the experiment state, so the warning is noise.
QUIET_LOGGERS = ("ray.tune.analysis.experiment_analysis",)


class RayStart:
    """Ray starting in a background thread while this process imports and loads its data.

    A local Ray takes 4-30 s to start on a small machine and the pipeline's imports another 5-12 s;
    both mostly wait on other processes or on the disk, so they overlap. The next
    :func:`ray_session` with the same runtime waits for this start and owns the instance (shuts it
    down at its end); :meth:`release` shuts down a start no session took (the run failed first).

    The thread lives until Ray is shut down: Ray starts its head processes (GCS, raylet) with
    ``PR_SET_PDEATHSIG``, which Linux fires when the *thread* that started them ends, not the
    process; a thread that returned after ``ray.init`` would take the node down with it.
    """

    def __init__(self, runtime: RuntimeSpec):
        import threading

        import ray  # noqa: F401  (here, in the main thread: its imports never race the pipeline's)

        from automodel.cluster._compat import drop_init_thread_warning

        self.runtime, self.error, self.taken = runtime, None, False
        self.ready, self.done = threading.Event(), threading.Event()
        # Ray sets its SIGTERM handler (exit, so that atexit shuts Ray down) only from the main
        # thread; set the same one here, and drop Ray's warning that it could not.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        drop_init_thread_warning()
        self.thread = threading.Thread(target=self._start, name="automodel-ray-start", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        try:
            _connect(self.runtime)
        except BaseException as exc:  # handed to the session that waits for it
            self.error = exc
        self.ready.set()
        self.done.wait()  # Ray's head processes live as long as this thread (see above)

    def wait(self) -> None:
        """Block until Ray is up; re-raise what stopped it."""
        self.ready.wait()
        if self.error is not None:
            self.stop()
            raise self.error

    def stop(self) -> None:
        """After ``ray.shutdown()``: let the starting thread end."""
        self.done.set()
        self.thread.join()

    def release(self) -> None:
        """Shut down a start no session took (and wait for one still under way)."""
        global _pending
        if _pending is self:
            _pending = None
        if not self.taken:
            import ray

            self.ready.wait()
            ray.shutdown()
            self.stop()


_pending: RayStart | None = None


def start_ray(runtime: RuntimeSpec | None = None) -> RayStart:
    """Begin connecting Ray in the background; the next :func:`ray_session` takes it over."""
    global _pending
    _pending = RayStart(runtime or RuntimeSpec())
    return _pending


def release_pending() -> None:
    """Shut down a background start that no session took (the run stopped before Ray was used)."""
    if _pending is not None:
        _pending.release()


@contextlib.contextmanager
def ray_session(runtime: RuntimeSpec | None = None) -> Iterator[bool]:
    """Make sure Ray is up for the body; shut down only what this call started.

    ``runtime.address`` None starts a fresh local instance explicitly (``address="local"``), so a
    stale pointer file left by a killed head never makes us join a dead cluster. Token auth: when a
    token is available (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``) and
    ``RAY_AUTH_MODE`` is unset, token mode is turned on, so an explicit address of a cluster with
    authentication works; the token file is kept private (0600). A start begun by
    :func:`start_ray` for the same runtime is waited for and owned by this call.

    Yields:
        whether this call started Ray.
    """
    import ray

    global _pending
    runtime = runtime or RuntimeSpec()
    pending, _pending = _pending, None
    if pending is not None and pending.runtime == runtime:
        pending.taken = True
        pending.wait()
    elif pending is not None:  # started for another runtime: not ours to use
        pending.release()
        pending = None
    if ray.is_initialized() and pending is None:
        yield False
        return
    if not ray.is_initialized():
        _connect(runtime)
    set_loggers = TUNE_LOGGERS_ENV not in os.environ
    if set_loggers:
        os.environ[TUNE_LOGGERS_ENV] = "1"
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield True
    finally:
        ray.shutdown()
        if pending is not None:
            pending.stop()
        if set_loggers:
            os.environ.pop(TUNE_LOGGERS_ENV, None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# The node id of the local Ray this process started (its workers inherit this environment).
_started_local: str | None = None


def started_local_ray() -> bool:
    """Whether Ray is the single local node this process started (not a cluster it joined)."""
    import ray

    return (
        _started_local is not None
        and ray.is_initialized()
        and ray.get_runtime_context().get_node_id() == _started_local
    )


def _connect(runtime: RuntimeSpec) -> None:
    """``ray.init`` for ``runtime``: a fresh local instance, or the cluster at its address."""
    import ray

    from automodel.cluster._auth import prepare_client_auth, restrict_to_owner, token_file
    from automodel.cluster._compat import check_ray_version, local_only_for, local_only_node

    prepare_client_auth(starting_local=runtime.address is None)
    check_ray_version()
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    global _started_local
    if runtime.address is None:
        try:
            with local_only_node():  # one node on this machine: its ports stay on 127.0.0.1
                ray.init(address="local", num_cpus=runtime.num_cpus, **kwargs)
            _started_local = ray.get_runtime_context().get_node_id()
        except Exception as exc:  # Ray raises a bare Exception when its node times out starting
            raise ClusterError(f"the local Ray did not start: {_first_line(exc)}") from exc
    else:
        try:
            with local_only_for(runtime.address):
                ray.init(
                    address=runtime.address,
                    **{k: v for k, v in kwargs.items() if k != "include_dashboard"},
                )
        except ConnectionError as exc:
            raise ClusterError(
                f"runtime.address: cannot connect to the Ray cluster at {runtime.address}: {exc} (is it up? "
                "with token authentication, make its token available: ~/.ray/auth_token or RAY_AUTH_TOKEN_PATH)"
            ) from None
    if (path := token_file()) is not None:
        restrict_to_owner(path)  # Ray writes a token it generates with the umask (world-readable)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
