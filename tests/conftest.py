"""Shared fixtures: one real local Ray for the session, small datasets, the repo's paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance shared by every test that needs it; shut down at the end."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def digits():
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    return load_dataset(DataSpec())


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `automodel` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "automodel.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
