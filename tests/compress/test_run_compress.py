"""`automodel run` with a compress section: the run's artifact/model.onnx is the gate's choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from automodel.compress import integer_ops
from tests.compress.conftest import cli

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SPEC = """
name: digits
search: {families: [mlp], num_samples: 2, max_epochs: 3, space: {mlp: {hidden: 256, layers: 2}}}
train: {epochs: 5, num_workers: 1}
compress: {prune: 0.5, structured: true, quantize: int8, max_metric_drop: 0.05, finetune_epochs: 2}
"""


def test_run_compresses_the_artifact_it_serves(tmp_path, digits):
    from automodel.serve import Predictor

    (tmp_path / "spec.yaml").write_text(SPEC)
    proc = cli("run", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compress: chose" in proc.stderr
    artifact = tmp_path / "run" / "artifact"
    card = json.loads((artifact / "card.json").read_text())
    c = card["compression"]
    assert "int8" in c["chosen"] and c["metric_before"] - c["metric_after"] <= 0.05
    assert (
        c["size_bytes_after"]
        == (artifact / "model.onnx").stat().st_size
        < c["size_bytes_before"] / 3
    )
    assert "MatMulInteger" in integer_ops((artifact / "model.onnx").read_bytes())
    if c["chosen"] == "pruned+int8":
        assert card["params"]["hidden"] == [128, 128]
    # What serving loads scores what the card and the run's result say.
    target = digits.preprocessor.target
    preds, _ = Predictor(artifact).predict(digits.raw_test.drop(columns=[target]))
    served = float(np.mean(np.asarray(preds) == digits.raw_test[target].to_numpy()))
    assert served == pytest.approx(card["metrics"]["test"]["accuracy"], abs=1e-9)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["test"] == pytest.approx(
        served, abs=1e-9
    )
