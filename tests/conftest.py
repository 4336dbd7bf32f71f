"""Shared fixtures: one real local Ray for the session, small datasets, the repo's paths.

The session is sealed off from the machine's other Ray users: it runs with its own ``HOME`` (so
Ray's token file, ``~/.ray``, and any pointer to a running cluster are the session's own), without
``RAY_ADDRESS``, and its Ray keeps its files in its own temp dir. What the tests start, they stop
by the handles and PIDs they hold; nothing here stops processes by name.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
_SESSION: dict[str, str] = {}


def pytest_configure(config) -> None:
    # Short paths: Ray puts unix sockets under its temp dir (108-byte limit).
    home = tempfile.mkdtemp(prefix="am-home-")
    _SESSION.update(home=home, old_home=os.environ.get("HOME", ""))
    _SESSION["old_address"] = os.environ.pop("RAY_ADDRESS", "")
    os.environ["HOME"] = home
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def pytest_unconfigure(config) -> None:
    if "home" not in _SESSION:
        return
    os.environ["HOME"] = _SESSION["old_home"]
    if _SESSION["old_address"]:
        os.environ["RAY_ADDRESS"] = _SESSION["old_address"]
    shutil.rmtree(_SESSION["home"], ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance shared by every test that needs it, in its own temp dir on its own
    metrics port; ``ray.shutdown()`` at the end stops exactly the processes it started."""
    import ray

    started = not ray.is_initialized()
    if started:
        temp = tempfile.mkdtemp(prefix="am-ray-")
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=temp,
            _metrics_export_port=free_port(),
        )
    yield ray
    ray.shutdown()  # this process's own Ray, whoever in the session started it
    if started:
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def digits():
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    return load_dataset(DataSpec())


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real `automodel` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "automodel.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture(scope="session")
def s3_server():
    """A local S3 endpoint (moto) for the session, started on first use, stopped by its handle."""
    from tests._s3 import S3Server

    server = S3Server()
    yield server
    server.close()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """``s3://<a new bucket>``, with this test's environment pointed at the local endpoint."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return f"s3://{s3_server.bucket()}"
