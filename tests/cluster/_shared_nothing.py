"""A two-node Ray cluster whose nodes share no disk, and a local S3 endpoint as the one storage
every node reaches: what a cloud or KubeRay cluster looks like, on one machine.

The head runs as the two-node test's does. The worker runs under ``unshare --mount`` with a
private tmpfs over ``/tmp`` and ``/dev/shm``: it sees neither the head's session directory, nor
the driver's files, nor the head's token file (it gets its own copy, read before the mounts),
and its ``HOME`` (so automodel's cache) is on its own tmpfs. Both nodes and the endpoint stop by
their handles; the worker's whole namespace goes with its process group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests._s3 import S3Server
from tests.cluster.test_two_node import TwoNodeCluster
from tests.conftest import REPO

UNSHARE = shutil.which("unshare")


def why_not() -> str | None:
    """Why this machine cannot run the cluster (None: it can)."""
    if UNSHARE is None:
        return "the unshare command is not installed (util-linux)"
    probe = subprocess.run(
        [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs t /tmp"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"unshare --mount is not allowed here ({probe.stderr.strip()[:120]}); run as root"
    return None


# Runs inside the worker's namespace: keep the token (it lives under the head's /tmp), hide the
# head's /tmp and /dev/shm under private tmpfs, then become the Ray node.
WORKER = """set -e
token=$(cat "$AM_TOKEN")
mount -t tmpfs private /tmp
mount -t tmpfs private /dev/shm
mkdir -p "$AM_BASE/worker" "$AM_BASE/home"
printf %s "$token" > "$AM_BASE/token"
chmod 600 "$AM_BASE/token"
export RAY_AUTH_TOKEN_PATH="$AM_BASE/token" HOME="$AM_BASE/home"
exec "$@"
"""


# The GCS declares a node dead after this many failed health checks this far apart: 5 x 1 s here
# (Ray's defaults, 5 x 3 s, apply on a real cluster), so a lost node costs the tests seconds.
NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}


class SharedNothingCluster(TwoNodeCluster):
    """``head`` on this machine's disk, ``worker`` in its own mount namespace, ``s3`` the store.

    :meth:`kill_worker` loses the worker node as a machine is lost (every process at once, no
    drain); :meth:`restart_worker` brings a fresh one (a new namespace: empty ``/tmp``,
    ``/dev/shm`` and cache). Tests that kill it leave the cluster as they found it
    (:meth:`ensure_worker`), so the session's other tests run in any order.
    """

    def __init__(self, base: Path, s3: S3Server):
        self.s3 = s3
        self.restarts = 0
        self._worker_id: str | None = None
        super().__init__(base)

    def _start(self, name: str, cmd: list[str]) -> None:
        # every node's processes (trials, Train workers, replicas) reach S3 as a user's would
        self.env = {**self.env, **self.s3.env, **NODE_DEATH, "PYTHONPATH": pythonpath()}
        if name == "worker":
            self.env = {**self.env, "AM_TOKEN": str(self.token), "AM_BASE": str(self.base)}
            cmd = [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", WORKER, "sh", *cmd]
        super()._start(name, cmd)

    @property
    def worker_proc(self) -> subprocess.Popen:
        return self.procs[-1]

    def nodes(self) -> list[dict]:
        """Ray's node table (``node_id``, ``state``, ``is_head_node``, ...); [] when unreachable."""
        try:
            r = requests.get(f"{self.url}/api/v0/nodes", headers=self.headers(), timeout=10)
            return r.json()["data"]["result"]["result"]
        except (requests.RequestException, KeyError, ValueError):
            return []

    def worker_node_id(self) -> str:
        """The worker node's id (the one :meth:`restart_worker` started last)."""
        if self._worker_id is None:
            alive = [n for n in self.nodes() if n["state"] == "ALIVE" and not n["is_head_node"]]
            if len(alive) != 1:
                raise RuntimeError(f"expected one live worker node, found {len(alive)}")
            self._worker_id = alive[0]["node_id"]
        return self._worker_id

    def kill_worker(self) -> int:
        """SIGKILL every process of the worker node at once, as when its machine is lost: its
        process group and anything else in its mount namespace (nothing outside it). Returns how
        many processes were killed; the namespace and its tmpfs go with the last of them."""
        proc = self.worker_proc
        try:
            namespace = os.readlink(f"/proc/{proc.pid}/ns/mnt")
        except OSError:
            namespace = None
        if namespace == os.readlink("/proc/self/ns/mnt"):  # never this process's own
            namespace = None
        victims = set(_in_namespace(namespace)) if namespace else set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        end = time.time() + 30  # children reparented elsewhere die a moment later
        while namespace and time.time() < end and _in_namespace(namespace, alive_only=True):
            time.sleep(0.2)
        return len(victims | {proc.pid})

    def restart_worker(self, timeout: float = 240, attempts: int = 3) -> str:
        """A fresh worker node (new namespace, new ports) joins; returns its node id once ALIVE.
        A node that does not join in time (a loaded machine) is killed and started again on
        fresh ports; the head is never touched."""
        if self.worker_proc.poll() is None:
            raise RuntimeError("the worker node still runs; kill_worker() first")
        known = {n["node_id"] for n in self.nodes()} | {self._worker_id}  # the lost one too
        for _ in range(attempts):
            self.procs.remove(self.worker_proc)
            self.restarts += 1
            log = self.base / "worker.log"
            if log.exists():  # keep the lost node's log beside the new one's
                log.rename(self.base / f"worker.{self.restarts}.log")
            self._start("worker", self.worker_cmd())
            end = time.time() + timeout
            while time.time() < end and self.worker_proc.poll() is None:
                new = [
                    n["node_id"]
                    for n in self.nodes()
                    if n["state"] == "ALIVE" and not n["is_head_node"] and n["node_id"] not in known
                ]
                if new:
                    self._worker_id = new[0]
                    return new[0]
                time.sleep(1)
            self.kill_worker()  # what it started, its namespace with it
        raise RuntimeError(
            f"a restarted worker node did not join in {attempts} tries (logs: {self.base}/worker.*)"
        )

    def ensure_worker(self) -> None:
        """The cluster as the session started it: a worker node running (restarted if lost)."""
        if self.worker_proc.poll() is not None:
            self.restart_worker()

    def client_env(self, **extra: str) -> dict[str, str]:
        """A driver's environment on the head: the token, the S3 endpoint, this checkout importable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(self.s3.env)
        env.update(
            RAY_AUTH_TOKEN_PATH=str(self.token), RAY_AUTH_MODE="token", PYTHONPATH=pythonpath()
        )
        env.update(extra)
        return env


def pythonpath() -> str:
    """This checkout first: every node runs the automodel under test, wherever it is installed."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def _in_namespace(namespace: str, *, alive_only: bool = False) -> list[int]:
    """Processes in mount namespace ``namespace`` (``mnt:[...]``), zombies too unless ``alive_only``."""
    out = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            if os.readlink(pid_dir / "ns" / "mnt") != namespace:
                continue
            if alive_only and (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
        except OSError:
            continue
        out.append(int(pid_dir.name))
    return out


def start(attempts: int = 3) -> SharedNothingCluster:
    """Start the endpoint and both nodes; a node that times out starting (a loaded machine) gets
    one more try on fresh ports."""
    s3 = S3Server()
    for attempt in range(attempts):
        # short path: Ray's unix sockets live under the temp dir (~107 characters)
        base = Path(tempfile.mkdtemp(prefix="amsn-", dir="/tmp"))
        try:
            return SharedNothingCluster(base, s3)
        except RuntimeError:  # a node did not come up; TwoNodeCluster stopped what it started
            shutil.rmtree(base, ignore_errors=True)
            if attempt == attempts - 1:
                s3.close()
                raise
        except BaseException:
            s3.close()
            shutil.rmtree(base, ignore_errors=True)
            raise
    raise AssertionError("unreachable")


def stop(cluster: SharedNothingCluster) -> None:
    try:
        cluster.close()
    finally:
        cluster.s3.close()
        shutil.rmtree(cluster.base, ignore_errors=True)


__all__ = ["SharedNothingCluster", "start", "stop", "why_not"]
