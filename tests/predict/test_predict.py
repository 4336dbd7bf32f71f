"""`automodel predict` end to end: real files, real Ray Data, and a real server to agree with."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import requests

from tests.conftest import run_cli
from tests.predict.conftest import BAD, ID, write_parts


def _read_dir(folder) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    assert files, sorted(folder.iterdir())
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.mark.ray
@pytest.mark.slow
def test_three_parquet_files_score_as_serve_answers(digits_predict, tmp_path):
    from tests.serve.conftest import Server

    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=3)
    out = tmp_path / "out"
    res = run_cli(
        "predict",
        str(artifact.path),
        str(inp),
        "--out",
        str(out),
        "--id",
        ID,
        "--probabilities",
        "--batch-size",
        "128",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    # Progress lines, the last one counting every row; no Ray deprecation noise.
    assert f"predict: read {len(frame):,}" in res.stderr, res.stderr[-2000:]
    assert "deprecated" not in res.stderr, res.stderr[-2000:]

    # One prediction a good row, ids preserved; the two bad rows in errors/ with their reasons.
    got = _read_dir(out).sort_values(ID).reset_index(drop=True)
    good = frame.drop(index=sorted(BAD)).reset_index(drop=True)
    assert got[ID].tolist() == good[ID].tolist()
    classes = artifact.card["classes"]
    assert list(got.columns) == [ID, "prediction", *(f"probability_{c}" for c in classes)]
    errors = _read_dir(out / "errors").sort_values(ID).reset_index(drop=True)
    assert errors[ID].tolist() == [frame[ID][r] for r in sorted(BAD)]
    assert errors["error"].tolist() == [
        f"column {BAD[r][0]!r}: non-finite value ({BAD[r][1]})" for r in sorted(BAD)
    ]

    summary = json.loads((out / "predict.json").read_text())
    assert summary["rows"] == len(frame) and summary["scored"] == len(good)
    assert summary["errors"] == 2 and summary["version"] == str(artifact.version)
    assert summary["wall_s"] > 0 and summary["rows_per_s"] > 0
    assert sum(a["rows"] for a in summary["actors"]) == len(frame)
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith(f"predicted {len(good):,} rows (2 refused"), line

    # The same rows through a running `automodel serve`: the same answers.
    server = Server(artifact.path)
    try:
        rows = good.drop(columns=[ID]).to_numpy().tolist()
        r = requests.post(
            f"{server.url}/predict",
            json={"features": rows, "probabilities": True},
            timeout=60,
        )
        assert r.status_code == 200, r.text[:500]
        served = r.json()
    finally:
        server.kill()
    assert got["prediction"].tolist() == served["predictions"]
    proba = got[[f"probability_{c}" for c in classes]].to_numpy()
    # Float32 outputs of the same ONNX graph; batch shape may change the last bit of a sum.
    np.testing.assert_allclose(proba, np.array(served["probabilities"]), rtol=1e-5, atol=1e-7)


def test_missing_column_fails_at_once_naming_it(digits_predict, tmp_path):
    artifact, frame = digits_predict
    inp = write_parts(frame.drop(columns=["pixel_3_4"]), tmp_path / "in", parts=2)
    start = time.time()
    res = run_cli("predict", str(artifact.path), str(inp), "--out", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"input: column 'pixel_3_4' is missing from {inp}"), lines[0]
    assert time.time() - start < 60  # no Ray started, nothing read
    assert not (tmp_path / "out").exists()


def test_id_column_must_exist(digits_predict, tmp_path):
    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=1)
    res = run_cli(
        "predict", str(artifact.path), str(inp), "--out", str(tmp_path / "o"), "--id", "nope"
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("--id: column 'nope' is not in the files"), res.stderr
