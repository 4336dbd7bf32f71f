"""`make test` and `make clean` leave alone what they did not start.

A separately started Ray cluster (`ray start --head` on its own ports, temp dir and token) must
still answer after the test session's teardown and after `make clean`. The Makefile, CI script and
tests must not stop processes by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster.test_two_node import _free_ports, _node_ports, _worker_port_range
from tests.conftest import REPO

RAY = str(Path(sys.executable).parent / "ray")
# In shell (Makefile, CI) any mention; in Python, a command line that would run one.
SHELL_KILL = re.compile(r"\bray\s+stop\b|\bpkill\b|\bkillall\b")
PY_KILL = re.compile(
    r"""["'](pkill|killall)["']|["']ray["'],\s*["']stop["']|["'][^"']*\b(ray stop|pkill|killall)\b"""
)


def test_no_process_killing_by_name_in_makefile_ci_or_tests():
    hits = []
    for path, pattern in [
        (REPO / "Makefile", SHELL_KILL),
        (REPO / ".ci" / "run", SHELL_KILL),
        *[(p, PY_KILL) for p in sorted((REPO / "tests").rglob("*.py")) if p != Path(__file__)],
    ]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line.split("#", 1)[0]):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


class OtherCluster:
    """Someone else's Ray: `ray start --head --block` in its own process group, ports, temp dir,
    HOME and token."""

    def __init__(self, base: Path):
        self.base = base
        token = base / "auth_token"
        token.write_text(os.urandom(32).hex())
        token.chmod(0o600)
        self.port, client_port = _free_ports(2)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(
            HOME=str(base),
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(token),
            RAY_USAGE_STATS_ENABLED="0",
        )
        cmd = [
            RAY, "start", "--head", "--block", f"--port={self.port}",
            f"--ray-client-server-port={client_port}", "--include-dashboard=false",
            "--node-ip-address=127.0.0.1", f"--temp-dir={base / 'ray'}", "--num-cpus=1",
            "--object-store-memory=100000000", *_node_ports(_worker_port_range()),
        ]  # fmt: skip
        self.log = base / "head.log"
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(self.log, "w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )

    def answers(self) -> bool:
        """A client connects and reads the cluster's CPUs (a real round trip through the GCS)."""
        code = (
            f"import ray; ray.init(address='127.0.0.1:{self.port}', log_to_driver=False); "
            "print('CPU', int(ray.cluster_resources()['CPU']))"
        )
        try:
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=90,
            )
        except subprocess.TimeoutExpired:
            return False
        return "CPU 1" in out.stdout

    def stop(self) -> None:
        """Exactly this cluster: its process group, TERM then KILL."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def other_cluster():
    base = Path(tempfile.mkdtemp(prefix="amo-", dir="/tmp"))
    cluster = OtherCluster(base)
    try:
        deadline = time.time() + 150
        while not cluster.answers():
            if cluster.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    f"the other cluster did not start:\n{cluster.log.read_text()[-3000:]}"
                )
            time.sleep(2)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
def test_cleanup_leaves_another_ray_cluster_alive(other_cluster, tmp_path):
    # 1. A whole pytest session on the suite's shared Ray fixture, ended by its own teardown.
    probe = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/cluster/_session_probe.py"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-2000:]
    assert other_cluster.proc.poll() is None, "the session's teardown stopped another cluster"
    assert other_cluster.answers(), "another cluster stopped answering after a test session"

    # 2. `make clean`, run as it is written, in a scratch copy of the project root.
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "automodel_runs").mkdir()
    clean = subprocess.run(
        ["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert clean.returncode == 0, clean.stderr
    assert not (tmp_path / "automodel_runs").exists()
    assert other_cluster.proc.poll() is None, "`make clean` stopped another cluster"
    assert other_cluster.answers(), "another cluster stopped answering after `make clean`"
