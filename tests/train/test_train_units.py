"""Training without starting Ray: the learning-rate schedule, preflight errors, sklearn families."""

from __future__ import annotations

import time

import pytest
import yaml

from automodel.errors import ResourceError, SpecError
from automodel.models._recipe import lr_factor
from automodel.spec import RuntimeSpec, Spec, TrainSpec
from automodel.train import check_train_resources, train_model
from tests.conftest import run_cli


def test_lr_schedule_warms_up_then_decays():
    cosine = [lr_factor(p, 10, 2, "cosine") for p in (0.5, 1.0, 2.0, 6.0, 10.0)]
    assert cosine[0] == pytest.approx(0.25) and cosine[1] == pytest.approx(0.5)
    assert cosine[2] == pytest.approx(1.0) and cosine[2] > cosine[3] > cosine[4] == pytest.approx(
        0.01
    )
    step = [lr_factor(p, 10, 2, "step") for p in (3.0, 6.5, 8.5)]
    assert step == pytest.approx([1.0, 0.1, 0.01])
    assert lr_factor(5.0, 10, 0, "constant") == 1.0
    assert lr_factor(0.5, 1, 1, "cosine") > 0  # warm-up longer than training: no division by zero


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.skipif(not _no_gpu(), reason="this machine has a GPU")
def test_use_gpu_without_gpu_fails_before_any_work(tmp_path):
    spec = {"name": "gpu", "model": {"family": "mlp"}, "train": {"use_gpu": True, "num_workers": 2}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    start = time.time()
    proc = run_cli(
        "train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run"), timeout=120
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "train.use_gpu: true needs 2 GPU(s)" in lines[0] and "this machine has 0" in lines[0]
    assert "Traceback" not in proc.stderr
    # Before any work: no run directory, no Ray started (that alone takes several seconds).
    assert not (tmp_path / "run").exists()
    assert time.time() - start < 60


def test_preflight_names_the_key_and_the_fix():
    with pytest.raises(SpecError, match=r"train.resources_per_worker: .*'GPU'.*got 'gpu'"):
        check_train_resources(TrainSpec(resources_per_worker={"gpu": 1}), RuntimeSpec())
    with pytest.raises(
        ResourceError, match=r"train.num_workers: 64 worker\(s\) x 1 CPU need 64 CPUs"
    ):
        check_train_resources(TrainSpec(num_workers=64), RuntimeSpec(num_cpus=2))
    # An existing cluster may autoscale: its capacity is the cluster preflight's business.
    check_train_resources(TrainSpec(num_workers=64, use_gpu=True), RuntimeSpec(address="auto"))


def test_sklearn_families_fit_in_process(digits):
    spec = Spec.model_validate({"train": {"num_workers": 2}, "search": {"max_epochs": 5}})
    trained = train_model(spec, digits, "logistic", {})
    assert trained.info["backend"] == "local" and trained.info["workers"] == 1
    assert trained.model.predict(digits.X_test).shape == digits.y_test.shape
    assert trained.state_dict is None
