"""`automodel compress`: the issue's checks on real artifacts, through the real CLI where it matters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from automodel.compress import integer_ops
from automodel.progress import Progress
from automodel.spec import CompressSpec
from tests.compress.conftest import cli, make_artifact

QUIET = Progress(quiet=True)


def served_accuracy(artifact: Path, digits) -> float:
    """Raw test rows through preprocess.json + model.onnx, as the service answers them."""
    from automodel.serve import Predictor

    target = digits.preprocessor.target
    preds, _ = Predictor(artifact).predict(digits.raw_test.drop(columns=[target]))
    return float(np.mean(np.asarray(preds) == digits.raw_test[target].to_numpy()))


def card(artifact: Path) -> dict:
    return json.loads((artifact / "card.json").read_text())


def test_mlp_pruned_50_and_int8(mlp_artifact, tmp_path, digits):
    out = tmp_path / "small"
    proc = cli(
        "compress",
        str(mlp_artifact),
        "--prune",
        "0.5",
        "--quantize",
        "int8",
        "--finetune-epochs",
        "2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "chose pruned+int8" in proc.stdout and "compress: pruned+int8" in proc.stderr

    c = card(out)["compression"]
    before, after = (
        (mlp_artifact / "model.onnx").stat().st_size,
        (out / "model.onnx").stat().st_size,
    )
    assert c["chosen"] == "pruned+int8" and (c["prune"], c["quantize"]) == (0.5, "int8")
    assert (c["size_bytes_before"], c["size_bytes_after"]) == (before, after)
    assert before / after >= 3.0
    assert "MatMulInteger" in integer_ops((out / "model.onnx").read_bytes())
    assert c["metric"] == "accuracy" and c["metric_before"] - c["metric_after"] <= 0.01
    assert c["latency_ms_before"] > 0 and c["latency_ms_after"] > 0
    assert [v["variant"] for v in c["variants"]] == ["float", "pruned", "int8", "pruned+int8"]
    assert {r["variant"] for r in c["rejected"]} == {"pruned", "int8"}

    # Masks made permanent: plain weight tensors, half of them zero.
    from safetensors.numpy import load_file

    weights = load_file(str(out / "weights.safetensors"))
    assert set(weights) == set(load_file(str(mlp_artifact / "weights.safetensors")))
    matrices = [w for name, w in weights.items() if name.endswith("weight")]
    zeros = sum(int((w == 0).sum()) for w in matrices) / sum(w.size for w in matrices)
    assert zeros == pytest.approx(0.5, abs=0.01)

    # The card's test metric is the served model's.
    got = served_accuracy(out, digits)
    assert got == pytest.approx(c["metric_after"], abs=1e-6)
    assert card(out)["metrics"]["test"]["accuracy"] == pytest.approx(got, abs=1e-9)


def test_impossible_budget_keeps_float_and_says_why(mlp_copy):
    original = (mlp_copy / "model.onnx").read_bytes()
    proc = cli(
        "compress",
        str(mlp_copy),
        "--prune",
        "0.5",
        "--quantize",
        "int8",
        "--max-metric-drop",
        "0",
        "--finetune-epochs",
        "1",
        "--in-place",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "chose float" in proc.stdout
    c = card(mlp_copy)["compression"]
    assert c["chosen"] == "float" and "no variant" in c["reason"]
    assert (mlp_copy / "model.onnx").read_bytes() == original  # in place, untouched
    assert c["size_bytes_after"] == c["size_bytes_before"] == len(original)
    assert {r["variant"] for r in c["rejected"]} == {"pruned", "int8", "pruned+int8"}
    for r in c["rejected"]:
        assert (
            "max_metric_drop is 0" in r["reason"] and r["size_bytes"] > 0 and 0 < r["metric"] <= 1
        )


def test_cnn_static_int8(tmp_path, digits):
    art = make_artifact(tmp_path / "cnn", "cnn", {"channels": 16, "lr": 2e-3}, epochs=6)
    out = tmp_path / "int8"
    proc = cli("compress", str(art), "--out", str(out))  # no flags: int8
    assert proc.returncode == 0, proc.stderr[-3000:]
    c = card(out)["compression"]
    assert c["chosen"] == "int8" and c["variants"][1]["method"] == "static"
    ops = integer_ops((out / "model.onnx").read_bytes())
    assert (
        "QLinearConv" in ops
    )  # convolutions really run in int8 (dynamic mode would leave them float)
    assert c["size_bytes_before"] / c["size_bytes_after"] >= 3.0
    assert c["metric_before"] - c["metric_after"] <= 0.01
    assert served_accuracy(out, digits) == pytest.approx(c["metric_after"], abs=1e-6)


def test_structured_pruning_really_shrinks_layers(mlp_artifact, tmp_path):
    from automodel.artifact import read_artifact
    from automodel.compress import compress_artifact
    from automodel.compress._source import build_family, load_module

    options = CompressSpec(prune=0.5, structured=True, quantize="none", finetune_epochs=2)
    art = compress_artifact(mlp_artifact, options, out=tmp_path / "s", progress=QUIET)
    c = art.card["compression"]
    assert c["chosen"] == "pruned" and art.card["params"]["hidden"] == [256, 128]
    assert c["metric_before"] - c["metric_after"] <= 0.01
    # Dense layers are smaller: fewer parameters, a smaller file, and the card rebuilds the module.
    module = load_module(read_artifact(art.path))
    original = build_family(read_artifact(mlp_artifact)).build_module()
    n = sum(p.numel() for p in module.parameters())
    assert n == 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert n < 0.35 * sum(p.numel() for p in original.parameters())
    assert c["size_bytes_before"] / c["size_bytes_after"] >= 3.0


def test_regression_mlp_keeps_target_scaling(tmp_path):
    from automodel.compress import compress_artifact

    art = make_artifact(
        tmp_path / "reg",
        "mlp",
        {"hidden": [64, 64], "lr": 3e-3},
        epochs=30,
        source="builtin:diabetes",
    )
    options = CompressSpec(
        prune=0.5, structured=True, quantize="int8", max_metric_drop=0.05, finetune_epochs=3
    )
    c = compress_artifact(art, options, progress=QUIET).card["compression"]
    assert c["metric"] == "r2" and c["metric_before"] > 0.2
    by_name = {v["variant"]: v for v in c["variants"]}
    # The re-exported pruned model predicts in target units (a lost scaling would put r2 far below 0).
    assert abs(by_name["pruned"]["metric"] - c["metric_before"]) < 0.1
    assert by_name["pruned"]["metrics"]["rmse"] < 1.2 * by_name["float"]["metrics"]["rmse"]


def test_tree_family_stays_float_and_says_why(tmp_path):
    from automodel.compress import compress_artifact

    art = make_artifact(
        tmp_path / "rf", "random_forest", {"n_estimators": 20, "max_depth": 8}, epochs=1
    )
    original = (art / "model.onnx").read_bytes()
    c = compress_artifact(art, CompressSpec(prune=0.5, quantize="int8"), progress=QUIET).card[
        "compression"
    ]
    assert c["chosen"] == "float" and "scikit-learn" in c["reason"] and "int8" in c["reason"]
    assert (art / "model.onnx").read_bytes() == original


def test_magnitude_masks_are_permanent():
    import torch

    from automodel.compress._prune import magnitude_prune, make_permanent, sparsity
    from automodel.models import MLPModule

    module = MLPModule(64, 10, [128, 64], 0.0)
    magnitude_prune(module, 0.7)
    assert sparsity(module) == pytest.approx(0.7, abs=1e-3)
    make_permanent(module)
    assert not any(k.endswith(("_orig", "_mask")) for k in module.state_dict())
    assert sparsity(module) == pytest.approx(0.7, abs=1e-3)
    assert all(not m._forward_pre_hooks for m in module.modules())
    assert module(torch.zeros(2, 64)).shape == (2, 10)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_structured_pruning_drops_dead_units_exactly(family):
    """Units that contribute nothing (zero incoming weights and bias) are the ones removed, and
    removing them leaves the outputs unchanged: the slicing keeps every surviving connection."""
    import torch

    from automodel.compress._prune import prunable_layers, shrink_into, shrunk_params
    from automodel.models import FAMILIES

    params = {"hidden": [32, 16]} if family == "mlp" else {"channels": 8}
    fam = FAMILIES[family]("classification", 64, 10, params, image_shape=(8, 8))
    torch.manual_seed(0)
    old = fam.build_module().eval()
    with torch.no_grad():
        for layer in prunable_layers(old)[:-1]:
            if family == "cnn" and isinstance(layer, torch.nn.Linear):
                continue  # the CNN's head width is not a family param: it is kept whole
            dead = torch.arange(0, layer.weight.shape[0], 2)
            layer.weight[dead] = 0
            layer.bias[dead] = 0
    small_params = shrunk_params(fam, 0.5)
    new = shrink_into(
        old,
        FAMILIES[family](
            "classification", 64, 10, {**params, **small_params}, image_shape=(8, 8)
        ).build_module(),
    ).eval()
    x = torch.randn(16, 64)
    with torch.no_grad():
        assert torch.allclose(old(x), new(x), atol=1e-5)
    assert sum(p.numel() for p in new.parameters()) < 0.6 * sum(p.numel() for p in old.parameters())


# ---- bad input: one line on stderr, exit 2 -------------------------------------------------------
def _corrupt(artifact: Path, how: str) -> list[str]:
    # the card's hashes follow each edit, so the check under test is reached (an edit the card
    # does not know is refused earlier, by the reader's integrity check: tests/artifact/)
    from tests.serve.conftest import rehash_card

    if how == "truncated onnx":
        data = (artifact / "model.onnx").read_bytes()
        (artifact / "model.onnx").write_bytes(data[: len(data) // 2])
        rehash_card(artifact)
    elif how == "corrupt weights":
        (artifact / "weights.safetensors").write_bytes(b"\x00garbage" * 10)
        rehash_card(artifact)
        return ["--prune", "0.5"]
    elif how == "corrupt card":
        (artifact / "card.json").write_text('{"name": "digits", "task": ')
    elif how == "missing weights":
        (artifact / "weights.safetensors").unlink()
        return ["--prune", "0.5"]
    return []


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated onnx", "not a valid ONNX model"),
        ("corrupt weights", "not a valid safetensors file"),
        ("corrupt card", "corrupt JSON"),
        ("missing weights", "weights.safetensors is missing"),
    ],
)
def test_corrupt_artifact_is_a_clear_error(mlp_copy, capsys, how, message):
    from automodel.cli import main

    extra = _corrupt(mlp_copy, how)
    assert main(["-q", "compress", str(mlp_copy), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_cli_errors_through_the_real_command(mlp_copy):
    _corrupt(mlp_copy, "truncated onnx")
    proc = cli("compress", str(mlp_copy))
    assert (
        proc.returncode == 2
        and "not a valid ONNX model" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prune", "1.5"], "--prune: must be <= 0.95, got 1.5"),
        (["--max-metric-drop", "-0.1"], "--max-metric-drop: must be >= 0.0, got -0.1"),
    ],
)
def test_bad_flags_name_the_flag(mlp_artifact, capsys, args, message):
    from automodel.cli import main

    assert main(["compress", str(mlp_artifact), *args]) == 2
    assert capsys.readouterr().err.strip() == message


def test_missing_artifact(tmp_path, capsys):
    from automodel.cli import main

    assert main(["compress", str(tmp_path / "nope")]) == 2
    assert "artifact not found" in capsys.readouterr().err


def test_already_compressed_artifact_is_refused(mlp_artifact, tmp_path, capsys):
    from automodel.cli import main

    out = tmp_path / "int8"
    assert main(["-q", "compress", str(mlp_artifact), "--out", str(out)]) == 0
    assert main(["compress", str(out)]) == 2
    assert "already compressed" in capsys.readouterr().err
