"""`automodel submit` errors that need no cluster: one line on stderr, exit 2, before any upload."""

from __future__ import annotations

import socket

from automodel.cluster.launch._submit import entrypoint
from tests.conftest import REPO, run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_entrypoint_uses_the_job_script_else_the_module(tmp_path):
    assert entrypoint("pipeline", "specs/a b.yaml", REPO, "/runs/x", []) == (
        "python jobs/pipeline.py --spec 'specs/a b.yaml' --out /runs/x"
    )
    assert entrypoint("sweep", "s.yaml", tmp_path, None, ["--resume"]) == (
        "python -m automodel.cluster.launch._job sweep --spec s.yaml --resume"
    )


def test_spec_outside_the_working_directory_is_refused(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text((REPO / "tests" / "cluster" / "specs" / "tiny.yaml").read_text())
    res = run_cli("submit", str(spec), "--address", "http://127.0.0.1:1", cwd=REPO, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith(f"the spec {spec} must lie inside the working directory")


def test_unreachable_cluster_and_missing_address_are_user_errors():
    url = f"http://127.0.0.1:{_closed_port()}"
    res = run_cli(
        "submit", "tests/cluster/specs/tiny.yaml", "--address", url, cwd=REPO, timeout=120
    )
    assert res.returncode == 2 and f"cannot reach the Ray dashboard at {url}" in res.stderr, (
        res.stderr
    )
    assert "Traceback" not in res.stderr
    env = {"RAY_ADDRESS": "", "RAY_API_SERVER_ADDRESS": ""}
    res = run_cli("submit", "--status", "x", cwd=REPO, env=env, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("submit needs --address"), res.stderr
