"""A real two-node Ray cluster on this machine, token auth on: jobs, `automodel submit`, preflight.

The cluster is this module's own: `ray start --head --block` and `ray start --address --block`, each
in its own process group on free ports with its own temp dir, torn down by killing exactly those
groups (never `ray stop`: other Ray instances on the machine are left alone).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPECS = "tests/cluster/specs"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_ports(worker_lo: int) -> list[str]:
    # Every port explicit: Ray's defaults (6379, 8265, 52365, ...) may belong to another instance.
    p = _free_ports(6)
    return [
        f"--node-manager-port={p[0]}",
        f"--object-manager-port={p[1]}",
        f"--metrics-export-port={p[2]}",
        f"--dashboard-agent-listen-port={p[3]}",
        f"--dashboard-agent-grpc-port={p[4]}",
        f"--runtime-env-agent-port={p[5]}",
        f"--min-worker-port={worker_lo}",
        f"--max-worker-port={worker_lo + 99}",
    ]


def _worker_port_range() -> int:
    # A block of 100 ports that looks free now (Ray's worker processes bind in it).
    # Below Linux's ephemeral range (32768+), so outgoing connections never sit in it; SO_REUSEADDR
    # so ports left in TIME_WAIT by earlier tests (Ray binds with it too) do not count as taken.
    for attempt in range(200):
        lo = 10000 + (os.getpid() * 7919 + int(time.time() * 1000) + attempt * 211) % 22000
        try:
            for port in range(lo, lo + 100, 9):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
            return lo
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("no free port range")


def _common(cpus: int, object_store: int) -> list[str]:
    # every node: blocking, so the handle is the node
    return [
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--object-store-memory={object_store}",
        f"--num-cpus={cpus}",
    ]


class TwoNodeCluster:
    """A head and ``workers`` worker nodes on this machine (default: one; one CPU each, a small
    object store), token auth on; stopped by their handles."""

    def __init__(
        self, base: Path, *, workers: int = 1, cpus: int = 1, object_store: int = 200_000_000
    ):
        self.base = base
        self.common = _common(cpus, object_store)
        self.token = base / "auth_token"
        self.token.write_text(os.urandom(32).hex())
        self.token.chmod(0o600)
        self.gcs_port, client_port, self.dash_port = _free_ports(3)
        self.gcs = f"127.0.0.1:{self.gcs_port}"
        self.url = f"http://127.0.0.1:{self.dash_port}"
        # Token auth on for the cluster and every process it starts (job drivers included).
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(
            RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token), RAY_USAGE_STATS_ENABLED="0"
        )
        self.procs: list[subprocess.Popen] = []
        self._start(
            "head",
            [
                "ray",
                "start",
                "--head",
                f"--port={self.gcs_port}",
                f"--ray-client-server-port={client_port}",
                f"--dashboard-port={self.dash_port}",
                "--dashboard-host=127.0.0.1",
                f"--temp-dir={base / 'head'}",
                *self.common,
                *_node_ports(_worker_port_range()),
            ],
        )
        self._wait(lambda: self._nodes() >= 1, "the head node")
        for i in range(1, workers + 1):
            name = "worker" if i == 1 else f"worker{i}"
            self._start(name, self.worker_cmd(name))
            self._wait(lambda i=i: self._nodes() >= i + 1, f"the {name} node")

    def worker_cmd(self, name: str = "worker") -> list[str]:
        """`ray start` of a worker node joining the head, on ports free now."""
        return [
            "ray",
            "start",
            f"--address={self.gcs}",
            f"--temp-dir={self.base / name}",
            *self.common,
            *_node_ports(_worker_port_range()),
        ]

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.base / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs.append(
            subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.read_text()}"}

    def _nodes(self) -> int:
        try:
            r = requests.get(f"{self.url}/api/v0/nodes", headers=self.headers(), timeout=5)
            nodes = r.json()["data"]["result"]["result"]
        except (requests.RequestException, KeyError, ValueError):
            return 0
        return sum(n["state"] == "ALIVE" for n in nodes)

    def _wait(self, ok, what: str, timeout: float = 120) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if ok():
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(1)
        logs = "\n".join(
            (self.base / f).read_text()[-2000:]
            for f in ("head.log", "worker.log")
            if (self.base / f).exists()
        )
        self.close()
        raise RuntimeError(f"{what} did not come up:\n{logs}")

    def close(self) -> None:
        for p in reversed(self.procs):  # worker first, then head: both drain gracefully on SIGTERM
            with _quiet():
                os.killpg(p.pid, signal.SIGTERM)
        end = time.time() + 5  # a short grace, then SIGKILL: a graceful drain is not needed here
        while time.time() < end and any(p.poll() is None for p in self.procs):
            time.sleep(0.5)
        for p in self.procs:
            with _quiet():
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        _kill_strays(self.base)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


def _kill_strays(base: Path) -> None:
    """Processes of this cluster that left its process groups (job drivers run in their own session)."""
    needle = str(base)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(pid_dir / "cwd")
        except OSError:
            continue
        if needle in cmd or cwd.startswith(needle):
            with _quiet():
                os.kill(int(pid_dir.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster():
    # Short path: Ray's unix sockets live under the temp dir and are limited to ~107 characters.
    base = Path(tempfile.mkdtemp(prefix="amc-", dir="/tmp"))
    c = TwoNodeCluster(base)
    yield c
    c.close()
    shutil.rmtree(base, ignore_errors=True)


def _client_env(c: TwoNodeCluster, **extra: str) -> dict[str, str]:
    """A client's environment: the token file, not the mode (automodel turns it on itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_TOKEN_PATH=str(c.token), **extra)
    return env


def _artifact_ok(run_dir: Path) -> None:
    art = run_dir / "artifact"
    assert (art / "card.json").is_file() and (art / "model.onnx").stat().st_size > 0, sorted(
        run_dir.rglob("*")
    )


def test_cluster_has_two_nodes_and_refuses_callers_without_the_token(cluster):
    assert cluster._nodes() == 2
    assert requests.get(f"{cluster.url}/api/jobs/", timeout=10).status_code == 401
    env = _client_env(cluster)
    env.pop("RAY_AUTH_TOKEN_PATH")
    env["RAY_AUTH_MODE"] = "token"
    env["HOME"] = str(cluster.base)  # no ~/.ray/auth_token there
    out = subprocess.run(
        ["ray", "job", "list", "--address", cluster.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "token" in (out.stdout + out.stderr).lower()


def test_ray_job_submit_runs_the_pipeline_job(cluster, tmp_path):
    out_dir = tmp_path / "run"
    cmd = [
        "ray",
        "job",
        "submit",
        "--address",
        cluster.url,
        "--working-dir",
        ".",
        "--",
        "python",
        "jobs/pipeline.py",
        "--spec",
        f"{SPECS}/tiny.yaml",
        "--out",
        str(out_dir),
    ]
    start = time.time()
    out = subprocess.run(
        cmd,
        cwd=REPO,
        env=_client_env(cluster, RAY_AUTH_MODE="token"),
        capture_output=True,
        text=True,
        timeout=400,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "succeeded" in text.lower(), text[-3000:]
    assert "preflight ok" in text
    _artifact_ok(out_dir)
    print(f"ray job submit jobs/pipeline.py: {time.time() - start:.1f} s")


def test_automodel_submit_runs_the_pipeline_and_reports_status(cluster, tmp_path):
    out_dir = tmp_path / "run"
    start = time.time()
    res = run_cli(
        "submit",
        f"{SPECS}/tiny.yaml",
        "--address",
        cluster.url,
        "--out",
        str(out_dir),
        cwd=REPO,
        env=_client_env(cluster),
        timeout=400,
    )
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    _artifact_ok(out_dir)
    job_id = res.stderr.split("submitted ", 1)[1].split()[0]
    assert f"job {job_id} SUCCEEDED" in res.stderr
    print(f"automodel submit (pipeline): {time.time() - start:.1f} s")

    status = run_cli(
        "submit", "--status", job_id, "--address", cluster.url, cwd=REPO, env=_client_env(cluster)
    )
    assert status.returncode == 0 and status.stdout.startswith(f"{job_id} SUCCEEDED"), status.stderr
    stop = run_cli(
        "submit", "--stop", job_id, "--address", cluster.url, cwd=REPO, env=_client_env(cluster)
    )
    assert stop.returncode == 0 and "had already ended" in stop.stdout, stop.stderr


def test_gpu_demand_fails_preflight_within_seconds(cluster, tmp_path):
    # Straight from the CLI against the cluster: runtime.address set in the spec.
    spec = tmp_path / "gpu.yaml"
    spec.write_text(
        (REPO / SPECS / "too_many_gpus.yaml").read_text()
        + f'runtime: {{address: "{cluster.gcs}"}}\n'
    )
    start = time.time()
    res = run_cli(
        "run", str(spec), "--out", str(tmp_path / "run"), env=_client_env(cluster), timeout=120
    )
    took = time.time() - start
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("resource error: train.use_gpu: train needs 2 workers x {GPU: 1}"), line
    assert "the cluster has {GPU: 0, CPU: 2} on 2 node(s)" in line
    assert took < 60, took  # process start, imports and connecting included; no waiting for GPUs
    print(f"automodel run, GPU preflight failure: {took:.1f} s")

    # As a job: it fails in preflight, `automodel submit` exits 1 and shows why.
    start = time.time()
    res = run_cli(
        "submit",
        f"{SPECS}/too_many_gpus.yaml",
        "--address",
        cluster.url,
        cwd=REPO,
        env=_client_env(cluster),
        timeout=200,
    )
    assert res.returncode == 1, res.stderr[-2000:]
    assert "resource error: train.use_gpu" in res.stdout and " FAILED" in res.stderr
    print(f"automodel submit, GPU preflight failure: {time.time() - start:.1f} s")


PROBE_JOB = """\
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--spec")
p.add_argument("--out")
args = p.parse_known_args()[0]
files = sorted(os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk(".") for f in fs)
print("FILES " + json.dumps(files))
print("SPEC " + json.dumps(open(args.spec).read()))
"""
SECRETS = (".env", "deploy.pem", "tls.key", "auth_token", ".ray/auth_token", "sub/.env")


def test_submit_ships_a_spec_from_tmp_and_never_uploads_secrets(cluster, tmp_path):
    # A project whose jobs/pipeline.py reports what the job received, with secrets beside the code
    # and no .gitignore to keep them out.
    project = tmp_path / "project"
    (project / "jobs").mkdir(parents=True)
    (project / "jobs" / "pipeline.py").write_text(PROBE_JOB)
    (project / "data.csv").write_text("a,b\n1,2\n")
    for name in SECRETS:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("secret\n")
    spec = Path(tempfile.mkdtemp(prefix="amspec-", dir="/tmp")) / "spec.yaml"
    text = "name: shipped\nsearch: {num_samples: 1}\n"
    spec.write_text(text)
    try:
        res = run_cli(
            "submit", str(spec), "--address", cluster.url, "--working-dir", str(project),
            cwd=project, env=_client_env(cluster), timeout=300,
        )  # fmt: skip
    finally:
        shutil.rmtree(spec.parent, ignore_errors=True)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    files = json.loads(res.stdout.split("FILES ", 1)[1].splitlines()[0])
    assert "data.csv" in files and "jobs/pipeline.py" in files, files
    assert not set(SECRETS) & set(files), files
    assert json.loads(res.stdout.split("SPEC ", 1)[1].splitlines()[0]) == text
