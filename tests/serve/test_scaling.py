"""The deploy config under `serve run`: autoscaling 1 -> 2 -> 1 under load, and a replica killed
under load (failed requests <= 1 %, back within 30 s). Timings are printed (pytest -s / -rP)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from automodel.serve._launch import replica_pids
from automodel.spec import Spec
from tests.serve.conftest import Load, digits_rows, make_artifact

pytestmark = [pytest.mark.ray, pytest.mark.slow]

AUTOSCALE = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1.0,
    "downscale_delay_s": 4.0,
    "max_ongoing_requests": 16,
}


def _wait(cond, timeout: float, step: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return None


@pytest.fixture(scope="module")
def serve_run(tmp_path_factory, digits):
    """`automodel deploy` -> YAML -> Ray's own `serve run` (fresh local Ray, HAProxy ingress)."""
    exe = shutil.which("serve")
    if exe is None:
        pytest.skip("Ray's `serve` CLI is not on PATH")
    from automodel.serve._launch import PORT_ENV, free_port
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("scaling")
    artifact, data = make_artifact(
        root / "artifact",
        Spec(name="digits", serve=AUTOSCALE),
        "logistic",
        {"C": 1.0},
        dataset=digits,
    )
    port = free_port()
    config = root / "serve.yaml"
    r = run_cli(
        "deploy",
        str(artifact.path),
        "--out",
        str(config),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    )
    assert r.returncode == 0, r.stderr
    env = {
        **os.environ,
        "RAY_ADDRESS": "local",
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        **{k: str(free_port()) for k in PORT_ENV},
    }
    log = open(root / "serve-run.log", "w")
    proc = subprocess.Popen(
        [exe, "run", str(config)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # stop waiting if it died

    _wait(ready, 240, 0.5)
    if proc.poll() is not None:
        pytest.fail(f"serve run exited: {(root / 'serve-run.log').read_text()[-3000:]}")
    yield proc, url, data
    if proc.poll() is None:
        # `serve run` waits up to 30 s for Serve's controller on Ctrl-C; its whole process group
        # (Ray, HAProxy) is ours to end sooner.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_run_accepts_the_deploy_config(serve_run):
    proc, url, data = serve_run
    r = httpx.post(f"{url}/predict", json={"features": digits_rows(data, 3)}, timeout=10)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    assert len(replica_pids(proc.pid)) == 1


def test_autoscaling_up_under_load_kill_a_replica_then_down(serve_run):
    proc, url, data = serve_run
    body = json.dumps({"features": digits_rows(data, 1)}).encode()
    t0 = time.time()
    load = Load(f"{url}/predict", body, conns=8)
    two = _wait(lambda: len(replica_pids(proc.pid)) == 2, 60)
    t_up = time.time() - t0
    assert two, f"no second replica after 60 s of load: {load.stop()[-3:]}"
    time.sleep(3)

    victim = replica_pids(proc.pid)[0]
    t_kill = time.time()
    os.kill(victim, signal.SIGKILL)
    restored = _wait(lambda: len(r := replica_pids(proc.pid)) == 2 and victim not in r, 30)
    t_restored = time.time() - t_kill
    time.sleep(max(0.0, 10 - t_restored))
    results = load.stop()
    t_stop = time.time()

    after = [r for r in results if r[0] >= t_kill]
    failed = [r for r in after if r[1] != 200]
    ok_after = [r[0] for r in after if r[1] == 200]
    first_ok = (min(ok_after) - t_kill) if ok_after else float("inf")
    down = _wait(lambda: len(replica_pids(proc.pid)) == 1, 90, 0.5)
    t_down = time.time() - t_stop
    print(
        f"\n[autoscaling] 1->2 replicas {t_up:.1f}s after load began; 2->1 {t_down:.1f}s after it stopped\n"
        f"[replica kill] {len(failed)} of {len(after)} requests failed after the kill "
        f"({100 * len(failed) / max(1, len(after)):.2f} %), first success {first_ok:.2f}s after, "
        f"replica replaced in {t_restored:.1f}s; failures: {sorted({r[2] for r in failed})[:5]}"
    )
    assert restored, "the killed replica was not replaced within 30 s"
    assert after and len(failed) <= 0.01 * len(after)
    assert first_ok < 30
    assert down, "replicas did not fall back to 1 within 90 s after the load stopped"
    r = httpx.post(f"{url}/predict", json={"features": digits_rows(data, 1)}, timeout=10)
    assert r.status_code == 200
