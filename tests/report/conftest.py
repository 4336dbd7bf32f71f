"""One real small `automodel run` (search, Ray Train fit, int8 compression, tracking) that every
report test reads: the report is tested on what the stages really write, never on a fake run."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

SPEC = """\
name: reportcheck
data: {source: "builtin:wine"}
features: {method: mutual_info, k: [4, 13]}
search: {families: [logistic, mlp, random_forest], num_samples: 6, max_epochs: 6, grace_period: 1}
train: {epochs: 6, num_workers: 1}
compress: {quantize: int8}
tracking: {mlflow: "file:./mlruns", tensorboard: true}
runtime: {num_cpus: 2}
"""


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """`automodel run` in a fresh working directory, so ``file:./mlruns`` lands there."""
    cwd = tmp_path_factory.mktemp("report_run")
    (cwd / "spec.yaml").write_text(SPEC)
    r = run_cli("run", "spec.yaml", "--out", "run", cwd=cwd, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return cwd / "run", r, cwd
