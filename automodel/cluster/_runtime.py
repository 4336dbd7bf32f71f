"""Connecting to Ray: an embedded local instance by default, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import os
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


@contextlib.contextmanager
def ray_session(runtime: RuntimeSpec | None = None) -> Iterator[bool]:
    """Make sure Ray is up for the body; shut down only what this call started.

    ``runtime.address`` None starts a fresh local instance explicitly (``address="local"``), so a
    stale pointer file left by a killed head never makes us join a dead cluster. Token auth: when a
    token is available (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``) and
    ``RAY_AUTH_MODE`` is unset, token mode is turned on, so an explicit address of a cluster with
    authentication works; the token file is kept private (0600).

    Yields:
        whether this call started Ray.
    """
    import ray

    from automodel.cluster._auth import prepare_client_auth, restrict_to_owner, token_file
    from automodel.cluster._compat import check_ray_version, local_only_for, local_only_node

    runtime = runtime or RuntimeSpec()
    if ray.is_initialized():
        yield False
        return
    prepare_client_auth(starting_local=runtime.address is None)
    check_ray_version()
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if runtime.address is None:
        try:
            with local_only_node():  # one node on this machine: its ports stay on 127.0.0.1
                ray.init(address="local", num_cpus=runtime.num_cpus, **kwargs)
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
        if set_loggers:
            os.environ.pop(TUNE_LOGGERS_ENV, None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
