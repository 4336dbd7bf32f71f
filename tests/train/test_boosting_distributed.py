"""LightGBM / XGBoost with ``train.num_workers: 2``: fitted by Ray Train's LightGBMTrainer /
XGBoostTrainer, exported to ONNX like an in-process fit.

LightGBM goes through the real CLI in a subprocess (its own Ray), on breast_cancer; the
artifact's ONNX graph is run on the test split and must score what the card says. XGBoost goes
through ``train_model`` on the session's shared Ray.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.conftest import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SOURCE = "builtin:breast_cancer"


@pytest.fixture(scope="module")
def breast_cancer():
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    return load_dataset(DataSpec(source=SOURCE, seed=0))


def test_lightgbm_on_two_workers_exports_an_artifact_onnx_agrees_with(tmp_path, breast_cancer):
    import onnxruntime as ort

    from automodel.artifact import read_artifact
    from automodel.metrics import score_raw

    spec = {
        "name": "bc_lgbm",
        "data": {"source": SOURCE, "seed": 0},
        "model": {
            "family": "lightgbm",
            "params": {"n_estimators": 60, "num_leaves": 15, "min_child_samples": 5},
        },
        "train": {"num_workers": 2},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    proc = run_cli("train", str(path), "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lightgbm: fit on 2 Ray Train worker(s)" in proc.stderr
    assert "LightGBMTrainer" in proc.stderr

    card = json.loads((out / "artifact" / "card.json").read_text())
    train = card["train"]
    assert train["workers"] == 2 and train["backend"] == "ray_train"
    assert train["trainer"] == "LightGBMTrainer" and train["trees"] == 60
    test_accuracy = card["metrics"]["test"]["accuracy"]
    assert test_accuracy >= 0.9

    artifact = read_artifact(out / "artifact")
    session = ort.InferenceSession(str(artifact.onnx_path))
    proba = session.run([artifact.output_name], {"input": breast_cancer.X_test})[0]
    onnx_accuracy = score_raw("classification", "accuracy", breast_cancer.y_test, proba)
    assert onnx_accuracy == pytest.approx(test_accuracy, abs=1e-9)


def test_xgboost_on_two_workers_matches_its_onnx_graph(ray_cluster, breast_cancer):
    import onnxruntime as ort

    from automodel.metrics import score_raw
    from automodel.spec import spec_from_dict
    from automodel.train import train_model

    lines: list[str] = []

    class Lines:
        def __call__(self, stage: str, message: str) -> None:
            lines.append(f"{stage}: {message}")

    spec = spec_from_dict({"data": {"source": SOURCE}, "train": {"num_workers": 2}})
    params = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2}
    trained = train_model(spec, breast_cancer, "xgboost", params, progress=Lines())

    assert any("xgboost: fit on 2 Ray Train worker(s)" in line for line in lines), lines
    assert trained.info["workers"] == 2 and trained.info["trainer"] == "XGBoostTrainer"
    model = trained.model
    assert model.model_.get_booster().num_boosted_rounds() == 40
    onnx_bytes, output = model.to_onnx()
    proba = ort.InferenceSession(onnx_bytes).run([output], {"input": breast_cancer.X_test})[0]
    np.testing.assert_allclose(proba, model.predict_raw(breast_cancer.X_test), atol=1e-5)
    assert score_raw("classification", "accuracy", breast_cancer.y_test, proba) >= 0.9
    assert trained.val_score >= 0.9
