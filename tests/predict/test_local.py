"""A small input is scored in the calling process (no Ray start) with the same outputs as Ray Data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.predict.conftest import BAD, ID, write_parts


def _frames(out) -> tuple[pd.DataFrame, pd.DataFrame]:
    def read(folder):
        files = sorted(folder.glob("*.parquet"))
        assert files, sorted(folder.iterdir())
        return pd.concat([pd.read_parquet(f) for f in files]).sort_values(ID).reset_index(drop=True)

    return read(out), read(out / "errors")


@pytest.mark.ray
def test_small_input_scores_in_process_as_ray_data_does(ray_cluster, digits_predict, tmp_path):
    from automodel.predict import predict

    artifact, frame = digits_predict
    inp = write_parts(frame, tmp_path / "in", parts=3)
    here = predict(artifact.path, str(inp), tmp_path / "here", id=ID, probabilities=True)
    # an actor count asked for: Ray Data's actor pool (on the session's Ray)
    on_ray = predict(
        artifact.path, str(inp), tmp_path / "ray", id=ID, probabilities=True, concurrency=1
    )
    assert [a["node"] for a in here.actors] == ["local"]
    assert [a["node"] for a in on_ray.actors] != ["local"]

    got, errors = _frames(tmp_path / "here")
    want, want_errors = _frames(tmp_path / "ray")
    assert list(got.columns) == list(want.columns)
    assert got[[ID, "prediction"]].equals(want[[ID, "prediction"]])
    proba = [c for c in got.columns if c.startswith("probability_")]
    np.testing.assert_allclose(got[proba].to_numpy(), want[proba].to_numpy(), rtol=1e-5, atol=1e-7)
    assert errors.equals(want_errors) and len(errors) == len(BAD)
    for key in ("rows", "scored", "errors", "files", "output_files"):
        assert getattr(here, key) == getattr(on_ray, key), key
    assert json.loads((tmp_path / "here" / "predict.json").read_text())["scored"] == len(got)


def test_small_input_through_the_cli_starts_no_ray(digits_predict, tmp_path):
    artifact, frame = digits_predict
    inp = tmp_path / "in.csv"
    frame.to_csv(inp, index=False)
    good = len(frame) - len(BAD)
    code = (
        "import sys; from automodel.cli import main\n"
        "rc = main(sys.argv[1:]); print('RAY' if 'ray' in sys.modules else 'NO RAY'); sys.exit(rc)"
    )
    import subprocess

    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "predict",
            str(artifact.path),
            str(inp),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "in this process" in r.stderr and r.stdout.strip().endswith("NO RAY"), r.stdout
    assert f"predicted {good:,} rows ({len(BAD)} refused" in r.stdout, r.stdout
    # and the CLI as users run it
    r = run_cli("predict", str(artifact.path), str(inp), "--out", str(tmp_path / "out2"))
    assert r.returncode == 0 and f"predicted {good:,} rows" in r.stdout, r.stderr[-2000:]
