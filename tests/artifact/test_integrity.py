"""Artifacts appear whole or not at all: card.json last, with every file's sha256; a reader
refuses a missing card or a changed byte with one line; an artifact at an s3:// URI is read into
this node's cache, keyed by its content. Real files, a real S3 endpoint (moto), no Ray."""

from __future__ import annotations

import json
import shutil

import pytest

from automodel import storage
from automodel.artifact import read_artifact
from automodel.errors import ArtifactError
from tests.artifact.test_contracts import artifact, iris, model  # noqa: F401 - fixtures


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_card_lists_every_file_with_its_hash(artifact):  # noqa: F811
    card = json.loads((artifact.path / "card.json").read_text())
    assert set(card["files"]) == {"model.onnx", "preprocess.json"}
    assert len(card["files"]["model.onnx"]["sha256"]) == 64
    assert read_artifact(artifact.path).card.files == artifact.card.files


@pytest.mark.parametrize("name", ["model.onnx", "preprocess.json"])
def test_a_changed_byte_is_refused_with_one_line(artifact, name):  # noqa: F811
    _flip_a_byte(artifact.path / name)
    with pytest.raises(ArtifactError) as err:
        read_artifact(artifact.path)
    msg = str(err.value)
    assert "\n" not in msg and name in msg and "does not match card.json" in msg, msg


def test_without_its_card_an_artifact_is_refused(artifact):  # noqa: F811
    (artifact.path / "card.json").unlink()
    with pytest.raises(ArtifactError, match="card.json is missing"):
        read_artifact(artifact.path)


def test_an_s3_artifact_loads_through_a_cache_keyed_by_content(artifact, s3, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUTOMODEL_CACHE", str(tmp_path / "cache"))
    uri = f"{s3}/artifacts/iris"
    storage.upload(artifact.path, uri, last=("card.json",))
    got = read_artifact(uri)
    assert got.source == uri and got.card.files == artifact.card.files
    assert got.path.parent == tmp_path / "cache" / "artifacts"
    assert read_artifact(uri).path == got.path  # the second read is the cached copy
    assert not list(tmp_path.rglob("s3:*"))
    # a changed byte in object storage is refused on the way into a fresh cache
    shutil.rmtree(tmp_path / "cache")
    bad = tmp_path / "bad"
    shutil.copytree(artifact.path, bad)
    _flip_a_byte(bad / "model.onnx")
    storage.write_bytes(f"{uri}/model.onnx", (bad / "model.onnx").read_bytes())
    with pytest.raises(ArtifactError, match=r"iris: model.onnx does not match card.json"):
        read_artifact(uri)
    assert not (tmp_path / "cache" / "artifacts").exists() or not any(
        p.name[0] != "." for p in (tmp_path / "cache" / "artifacts").iterdir()
    )
    # no card at the URI: never finished (card.json is written last)
    storage.delete(f"{uri}/card.json")
    with pytest.raises(ArtifactError, match="card.json is missing"):
        read_artifact(uri)
    with pytest.raises(ArtifactError, match="does not exist"):
        read_artifact(f"{s3}/artifacts/nothing")


def test_report_of_a_run_directory_in_s3(artifact, s3, tmp_path):  # noqa: F811
    """`automodel report s3://.../run` reads the run from S3 and writes report.html back there."""
    from tests.conftest import run_cli

    run = f"{s3}/runs/iris/1"
    storage.upload(artifact.path, f"{run}/artifact", last=("card.json",))
    storage.write_text(f"{run}/spec.yaml", "name: iris\n")
    r = run_cli("report", run, cwd=tmp_path, env={"AUTOMODEL_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"report: {run}/report.html"
    assert "<html" in storage.read_text(f"{run}/report.html").lower()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(":")]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_changed_byte_in_model_onnx_is_refused_by_predict_and_serving(
    artifact,  # noqa: F811
    where,
    s3,
    tmp_path,
):
    """`automodel predict` exits 2 with one line, before any work; the serving Predictor (what a
    replica loads) raises the same one-line ArtifactError."""
    from automodel.serve import Predictor
    from tests.conftest import run_cli

    _flip_a_byte(artifact.path / "model.onnx")
    art = str(artifact.path)
    if where == "s3":
        art = f"{s3}/artifacts/iris"
        storage.upload(artifact.path, art, last=("card.json",))
    data = tmp_path / "rows.csv"
    data.write_text(
        "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n1,2,3,4\n"
    )
    env = {"AUTOMODEL_CACHE": str(tmp_path / "cache")}
    r = run_cli("predict", art, str(data), "--out", str(tmp_path / "scores"), env=env)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    line = r.stderr.strip()
    assert "\n" not in line and "model.onnx does not match card.json" in line, line
    assert not (tmp_path / "scores").exists()
    with pytest.raises(ArtifactError, match="model.onnx does not match card.json") as err:
        Predictor(art)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_compress_from_s3_to_s3(s3, tmp_path):
    """`automodel compress s3://.../artifact --out s3://...`: read through the cache, compressed
    locally, uploaded with card.json last; the S3 float artifact stays as it was."""
    from tests.compress.conftest import cli, make_artifact, one_thread

    with one_thread():
        art = make_artifact(tmp_path / "run" / "artifact", "mlp", {"hidden": [16]}, epochs=1)
    src, out = f"{s3}/models/float", f"{s3}/models/int8"
    storage.upload(art, src, last=("card.json",))
    before = storage.read_bytes(f"{src}/card.json")
    r = cli("-q", "compress", src, "--out", out, "--quantize", "int8", "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"float artifact kept: {src}" in r.stdout
    assert storage.read_bytes(f"{src}/card.json") == before
    small = read_artifact(out)  # hashes checked on the way in
    assert small.card.compression.chosen == "int8" and small.source == out
