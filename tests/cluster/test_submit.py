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


def test_a_spec_outside_the_working_directory_is_written_by_the_job_itself(tmp_path):
    import base64
    import os
    import subprocess

    from automodel.cluster.launch._submit import SHIPPED_SPEC, SPEC_ENV

    cmd = entrypoint("pipeline", SHIPPED_SPEC, tmp_path, None, [], shipped=True)
    assert cmd.endswith(
        f"&& python -m automodel.cluster.launch._job pipeline --spec {SHIPPED_SPEC}"
    )
    # The first half, run by a shell as Ray runs an entrypoint, writes the spec from the env.
    text = "name: from-tmp\ndata: {source: builtin:digits}\n"
    env = {**os.environ, SPEC_ENV: base64.b64encode(text.encode()).decode()}
    first = cmd.split(" && ")[0]
    subprocess.run(first, shell=True, cwd=tmp_path, env=env, check=True, timeout=60)
    assert (tmp_path / SHIPPED_SPEC).read_text() == text


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
