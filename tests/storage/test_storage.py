"""The storage layer on real files and a real S3 endpoint (moto, through AWS_ENDPOINT_URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automodel import storage


def test_uri_or_path():
    assert storage.is_uri("s3://b/k") and storage.is_uri("gs://b") and storage.is_uri("file:///x")
    assert not storage.is_uri("runs/x") and not storage.is_uri(Path("/tmp/x"))
    assert storage.join("s3://b/runs/", "digits", "20260101") == "s3://b/runs/digits/20260101"
    assert storage.join("runs", "a") == Path("runs/a")
    assert storage.basename("s3://b/artifacts/m/") == "m"
    assert storage.parent("s3://b/artifacts/m") == "s3://b/artifacts"
    # credentials in a URI are never shown
    assert storage.display("s3://KEY:SECRET@bucket/x") == "s3://bucket/x"


@pytest.mark.parametrize("where", ["s3", "local"])
def test_write_read_list_copy_delete(where, s3, tmp_path):
    root = f"{s3}/a/b" if where == "s3" else tmp_path / "a" / "b"
    storage.write_text(storage.join(root, "x.txt"), "hello")
    storage.write_bytes(storage.join(root, "sub", "y.bin"), b"\x00\x01")
    assert storage.exists(root) and storage.is_dir(root)
    assert storage.is_file(storage.join(root, "x.txt"))
    assert storage.read_text(storage.join(root, "x.txt")) == "hello"
    assert storage.listdir(root) == ["x.txt"]
    assert storage.listdir(root, recursive=True) == ["sub/y.bin", "x.txt"]
    down = tmp_path / "down"
    storage.download(root, down)
    assert (down / "sub" / "y.bin").read_bytes() == b"\x00\x01"
    up = storage.join(root, "copy")
    storage.upload(down, up, last=("x.txt",))
    assert storage.listdir(up, recursive=True) == ["sub/y.bin", "x.txt"]
    storage.delete(root)
    assert not storage.exists(root)
    with pytest.raises(storage.StorageError, match="does not exist"):
        storage.read_bytes(storage.join(root, "x.txt"))


def test_no_folder_named_after_a_scheme(s3, tmp_path, monkeypatch):
    """Writing to a URI never creates a local folder named ``s3:`` (the old Path(uri) bug)."""
    monkeypatch.chdir(tmp_path)
    storage.write_text(storage.join(s3, "runs", "x.txt"), "x")
    local = storage.stage(f"{s3}/runs/digits/1")
    (local / "leaderboard.csv").write_text("a\n1\n")
    assert storage.publish(local) == f"{s3}/runs/digits/1"
    assert storage.read_text(f"{s3}/runs/digits/1/leaderboard.csv") == "a\n1\n"
    assert not list(tmp_path.rglob("s3:*")), list(tmp_path.rglob("*"))


def test_staging_publishes_the_card_last_and_resumes_from_the_uri(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMODEL_CACHE", str(tmp_path / "cache"))
    uri = f"{s3}/runs/digits/2"
    local = storage.stage(uri)
    assert storage.remote_of(local) == uri and storage.location_of(local) == uri
    (local / "artifact").mkdir()
    (local / "artifact" / "model.onnx").write_bytes(b"v1")
    (local / "artifact" / "card.json").write_text("{}")
    storage.publish(local)
    # a new model: the old remote card goes before the files change, the new one comes last
    (local / "artifact" / "model.onnx").write_bytes(b"v2-longer")
    (local / "artifact" / "card.json").write_text('{"v": 2}')
    storage.publish(local)
    assert storage.read_bytes(f"{uri}/artifact/model.onnx") == b"v2-longer"
    assert storage.read_text(f"{uri}/artifact/card.json") == '{"v": 2}'
    # a fresh head: the local folder is gone, the URI has it all
    import shutil

    shutil.rmtree(tmp_path / "cache")
    again = storage.stage(uri, download_existing=True)
    assert (again / "artifact" / "model.onnx").read_bytes() == b"v2-longer"
    assert storage.remote_of(again) == uri


@pytest.mark.parametrize("via", ["runtime.storage", "--out"])
def test_a_uri_run_directory_is_staged_and_published(via, s3, tmp_path, monkeypatch):
    """`runtime.storage: s3://...` (no --out) and `--out s3://...`: the run works in a staging
    folder that publishes to the URI; nothing named ``s3:`` appears where the run was started."""
    from automodel.pipeline import make_run_dir
    from automodel.spec import spec_from_dict

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOMODEL_CACHE", str(tmp_path / "cache"))
    spec = spec_from_dict({"name": "tiny", "runtime": {"storage": f"{s3}/runs"}})
    out = None if via == "runtime.storage" else f"{s3}/elsewhere/run1"
    run_dir = make_run_dir(spec, out)
    uri = storage.remote_of(run_dir)
    assert uri.startswith(f"{s3}/runs/tiny/" if out is None else out), uri
    assert run_dir.is_relative_to(tmp_path / "cache") and (run_dir / "spec.yaml").is_file()
    assert storage.publish(run_dir) == uri
    assert "name: tiny" in storage.read_text(storage.join(uri, "spec.yaml"))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(":")]


def test_ray_train_checkpoints_go_to_the_uri_a_staged_run_directory_publishes_to(
    tmp_path, monkeypatch
):
    """`--out s3://...` with the default local runtime.storage: Ray Train's checkpoints go to the
    URI, where a worker group restarted on another node finds them, not into the driver's
    staging folder; runtime.storage a URI still wins; a local run directory keeps them."""
    from automodel.spec import spec_from_dict
    from automodel.train._ray import _storage_path

    monkeypatch.setenv("AUTOMODEL_CACHE", str(tmp_path / "cache"))
    staged = storage.stage("s3://bucket/runs/r1")
    assert _storage_path(spec_from_dict({"name": "t"}), staged) == "s3://bucket/runs/r1"
    spec = spec_from_dict({"name": "t", "runtime": {"storage": "s3://b/ckpt"}})
    assert _storage_path(spec, staged) == "s3://b/ckpt/t/r1"
    local = tmp_path / "run"
    local.mkdir()
    assert _storage_path(spec_from_dict({"name": "t"}), local) == str(local.resolve())
