"""Connecting to Ray: an embedded local instance by default, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from automodel.spec import RuntimeSpec

# Tune writes CSV/JSON/TensorBoard logs per trial by default; automodel keeps its own leaderboard
# and history, and on 2 cores those loggers are a measurable share of each trial's overhead.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
# Without those loggers Tune warns once a trial that result.json is missing; the results are
# complete in the experiment state, so the warning is noise.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


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

    from automodel.cluster._auth import make_private, prepare_client_auth, token_file

    runtime = runtime or RuntimeSpec()
    if ray.is_initialized():
        yield False
        return
    prepare_client_auth(starting_local=runtime.address is None)
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if runtime.address is None:
        ray.init(address="local", num_cpus=runtime.num_cpus, **kwargs)
    else:
        try:
            ray.init(
                address=runtime.address,
                **{k: v for k, v in kwargs.items() if k != "include_dashboard"},
            )
        except ConnectionError as exc:
            from automodel.errors import ClusterError

            raise ClusterError(
                f"runtime.address: cannot connect to the Ray cluster at {runtime.address}: {exc} (is it up? "
                "with token authentication, make its token available: ~/.ray/auth_token or RAY_AUTH_TOKEN_PATH)"
            ) from None
    if (path := token_file()) is not None:
        make_private(path)  # Ray writes a token it generates with the umask (world-readable)
    try:
        yield True
    finally:
        ray.shutdown()
