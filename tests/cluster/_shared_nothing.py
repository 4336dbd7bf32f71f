"""A two-node Ray cluster whose nodes share no disk, and a local S3 endpoint as the one storage
every node reaches: what a cloud or KubeRay cluster looks like, on one machine.

The head runs as the two-node test's does. The worker runs under ``unshare --mount`` with a
private tmpfs over ``/tmp`` and ``/dev/shm``: it sees neither the head's session directory, nor
the driver's files, nor the head's token file (it gets its own copy, read before the mounts),
and its ``HOME`` (so automodel's cache) is on its own tmpfs. Both nodes and the endpoint stop by
their handles; the worker's whole namespace goes with its process group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests._s3 import S3Server
from tests.cluster.test_two_node import TwoNodeCluster

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


class SharedNothingCluster(TwoNodeCluster):
    """``head`` on this machine's disk, ``worker`` in its own mount namespace, ``s3`` the store."""

    def __init__(self, base: Path, s3: S3Server):
        self.s3 = s3
        super().__init__(base)

    def _start(self, name: str, cmd: list[str]) -> None:
        # every node's processes (trials, Train workers, replicas) reach S3 as a user's would
        self.env = {**self.env, **self.s3.env}
        if name == "worker":
            self.env = {**self.env, "AM_TOKEN": str(self.token), "AM_BASE": str(self.base)}
            cmd = [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", WORKER, "sh", *cmd]
        super()._start(name, cmd)

    def client_env(self, **extra: str) -> dict[str, str]:
        """A driver's environment on the head: the token, the S3 endpoint, the GCS address."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(self.s3.env)
        env.update(RAY_AUTH_TOKEN_PATH=str(self.token), RAY_AUTH_MODE="token", **extra)
        return env


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
