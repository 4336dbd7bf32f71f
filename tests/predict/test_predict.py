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


@pytest.mark.parametrize(
    "where",
    [
        pytest.param([], id="in-process"),
        # an actor shape asked for: Ray Data's read tasks and actor pool
        pytest.param(
            ["--concurrency", "1"], id="ray-data", marks=[pytest.mark.ray, pytest.mark.slow]
        ),
    ],
)
def test_files_whose_types_differ_score_every_castable_row(digits_predict, tmp_path, where):
    """Three Parquet files, one storing a numeric column as text: read against the model's
    schema, every row that casts scored, the rest in errors/ with the reason, exit 0."""
    from automodel.serve._predictor import Predictor

    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=3)
    part = pd.read_parquet(inp / "part-1.parquet")
    col = "pixel_2_3"
    text = part[col].map(lambda v: f"{v:g}").astype(object)
    junk = {0: "abc", 3: "1.5 px"}  # cannot be numbers: refused
    gaps = {1: "", 2: None}  # missing values: imputed, as serving does
    for i, v in {**junk, **gaps}.items():
        text.iat[i] = v
    part[col] = text
    part.to_parquet(inp / "part-1.parquet", index=False)
    out = tmp_path / "out"
    res = run_cli("predict", str(artifact.path), str(inp), "--out", str(out), "--id", ID, *where)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "max_restarts" not in res.stderr, res.stderr[-3000:]
    assert ("in this process" in res.stderr) == (not where), res.stderr[-2000:]

    refused = {
        int(part[ID].iat[i]): f"column {col!r}: expected a number, got {v!r}"
        for i, v in junk.items()
    }
    refused.update(
        {int(frame[ID][r]): f"column {BAD[r][0]!r}: non-finite value ({BAD[r][1]})" for r in BAD}
    )
    errors = _read_dir(out / "errors")
    assert dict(zip(errors[ID], errors["error"])) == refused
    got = _read_dir(out).sort_values(ID).reset_index(drop=True)
    assert sorted(got[ID]) == sorted(set(frame[ID]) - set(refused))

    # the text file's castable rows score as their numbers do in serving's encoder
    rows = frame[frame[ID].isin(got[ID])].sort_values(ID)
    rows.loc[rows[ID].isin(part[ID].iloc[list(gaps)]), col] = np.nan
    want, _ = Predictor(artifact.path).predict(rows.drop(columns=[ID]))
    assert got["prediction"].tolist() == list(want)

    summary = json.loads((out / "predict.json").read_text())
    assert summary["files"] == 3  # input files, however many files came out
    assert summary["rows"] == len(frame) and summary["errors"] == len(refused)


def test_a_file_that_lacks_a_column_fails_at_once_and_leaves_no_folder(digits_predict, tmp_path):
    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=3)
    pd.read_parquet(inp / "part-2.parquet").drop(columns=["pixel_5_5"]).to_parquet(
        inp / "part-2.parquet", index=False
    )
    res = run_cli("predict", str(artifact.path), str(inp), "--out", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("input: column 'pixel_5_5' is missing from part-2.parquet"), lines
    assert "data.source" not in lines[0]
    assert not (tmp_path / "out").exists()
