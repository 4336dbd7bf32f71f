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
    stale pointer file left by a killed head never makes us join a dead cluster.

    Yields:
        whether this call started Ray.
    """
    import ray

    runtime = runtime or RuntimeSpec()
    if ray.is_initialized():
        yield False
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
              "configure_logging": True}
    if runtime.address is None:
        ray.init(address="local", num_cpus=runtime.num_cpus, **kwargs)
    else:
        ray.init(address=runtime.address, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
    try:
        yield True
    finally:
        ray.shutdown()
