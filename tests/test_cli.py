"""`automodel compress` keeps the float artifact unless told --in-place (real CLI, real files)."""

from __future__ import annotations

import json

from tests.compress.conftest import cli, make_artifact, one_thread


def _card(path) -> dict:
    return json.loads((path / "card.json").read_text())


def test_compress_keeps_the_float_artifact(tmp_path):
    with one_thread():
        art = make_artifact(tmp_path / "run" / "artifact", "mlp", {"hidden": [64]}, epochs=2)
    onnx, card = (art / "model.onnx").read_bytes(), _card(art)

    r = cli("-q", "compress", str(tmp_path / "run"), "--quantize", "int8", "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run" / "artifact-compressed"
    assert f"float artifact kept: {art}" in r.stdout
    assert (art / "model.onnx").read_bytes() == onnx and _card(art) == card  # untouched
    assert _card(out)["compression"]["chosen"] == "int8"
    assert (out / "model.onnx").stat().st_size < len(onnx)

    # The float artifact can be compressed again (here into --out), which an in-place run forbade.
    r = cli("-q", "compress", str(art), "--out", str(tmp_path / "again"), "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    assert _card(tmp_path / "again")["compression"]["chosen"] == "int8"

    # --in-place is today's behaviour: the artifact itself becomes the compressed one.
    r = cli("-q", "compress", str(art), "--in-place", "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    assert _card(art)["compression"]["chosen"] == "int8" and "float artifact kept" not in r.stdout

    r = cli("compress", str(art), "--in-place", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
