"""cluster.yaml, the Dockerfile and generated build contexts, checked statically (no Docker here)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest
import ray
import yaml

from automodel.cluster import launcher_node_types
from automodel.cluster.launch import write_docker_context
from automodel.errors import ArtifactError
from tests.conftest import REPO, run_cli

# A literal credential: a secret-named key given a long value, an AWS key id, a private key block.
SECRET = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY)[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9/+_-]{16,}"
    r"|AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY",
    re.IGNORECASE,
)


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _check_dockerfile(text: str) -> list[tuple[str, str]]:
    ins = _instructions(text)
    words = [w for w, _ in ins]
    assert set(words) <= {
        "ARG",
        "FROM",
        "USER",
        "WORKDIR",
        "ENV",
        "RUN",
        "COPY",
        "EXPOSE",
        "HEALTHCHECK",
        "CMD",
        "LABEL",
        "ENTRYPOINT",
    }, words
    # Non-root: an explicit unprivileged USER before anything is installed or copied.
    users = [(i, a) for i, (w, a) in enumerate(ins) if w == "USER"]
    assert users and all(a not in ("root", "0") for _, a in users)
    first_work = min(i for i, (w, _) in enumerate(ins) if w in ("RUN", "COPY"))
    assert users[0][0] < first_work
    health = [a for w, a in ins if w == "HEALTHCHECK"]
    assert len(health) == 1 and " CMD " in f" {health[0]} "
    assert not SECRET.search(text), SECRET.search(text)
    assert "auth_token" not in " ".join(a for w, a in ins if w in ("COPY", "ENV", "ARG"))
    assert ":latest" not in text
    return ins


def test_cluster_yaml_passes_rays_schema_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(raw)))


def test_cluster_yaml_layout_gpu_autoscaling_auth_and_private_dashboard():
    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    types = {t.name: t for t in launcher_node_types(raw)}
    head = types[raw["head_node_type"]]
    assert head.resources == {"CPU": 0.0}  # the head runs no training
    gpu = [t for t in types.values() if t.resources.get("GPU", 0) >= 2]
    assert gpu, "an autoscaling worker type with >= 2 GPUs a node"
    node = raw["available_node_types"][gpu[0].name]
    assert node["max_workers"] > node.get("min_workers", 0)
    assert any(
        not t.head and "GPU" not in t.resources and t.resources.get("CPU") for t in types.values()
    )
    assert raw["idle_timeout_minutes"] > 0
    starts = " ".join(raw["head_start_ray_commands"] + raw["worker_start_ray_commands"])
    assert starts.count("RAY_AUTH_MODE=token") == 2
    assert "--dashboard-host=127.0.0.1" in starts and "0.0.0.0" not in starts
    assert "--num-cpus=0" in " ".join(raw["head_start_ray_commands"])
    assert "~/.ray/auth_token" in raw["file_mounts"]
    assert any("chmod 600 ~/.ray/auth_token" in c for c in raw["setup_commands"])
    images = [raw["docker"]["image"], node["docker"]["worker_image"]]
    assert all(i.startswith(f"rayproject/ray:{ray.__version__}-") for i in images), images
    assert not SECRET.search((REPO / "cluster.yaml").read_text())


def test_repository_dockerfile_is_pinned_non_root_healthy_and_secret_free():
    ins = _check_dockerfile((REPO / "Dockerfile").read_text())
    args = dict(a.split("=", 1) for w, a in ins if w == "ARG" and "=" in a)
    assert args["RAY_IMAGE"] == f"rayproject/ray:{ray.__version__}-py311-cpu"
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TORCH_VERSION"])
    runs = " ".join(a for w, a in ins if w == "RUN")
    assert (
        f"ray[default,serve,train,tune]=={ray.__version__}" in runs
        and "torch==${TORCH_VERSION}" in runs
    )
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", "**/auth_token", "automodel_runs"} <= set(ignored)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """A real artifact of the tiny spec (logistic on iris), built by the library without Ray."""
    from automodel.data import load_dataset
    from automodel.pipeline import build_artifact
    from automodel.spec import load_spec
    from automodel.train import train_model

    spec = load_spec(str(REPO / "tests" / "cluster" / "specs" / "tiny.yaml"))
    data = load_dataset(spec.data)
    trained = train_model(spec, data, "logistic", {})
    return build_artifact(spec, data, trained, tmp_path_factory.mktemp("art") / "artifact").path


def test_docker_context_for_one_artifact(artifact, tmp_path):
    out = write_docker_context(artifact, tmp_path / "ctx", port=8080)
    assert sorted(p.name for p in out.iterdir()) == [
        ".dockerignore",
        "Dockerfile",
        "artifact",
        "requirements.txt",
        "serve_config.yaml",
        "src",
    ]
    assert (out / "artifact" / "model.onnx").read_bytes() == (artifact / "model.onnx").read_bytes()
    assert (out / "src" / "automodel" / "serve" / "__init__.py").is_file()
    assert (out / "src" / "serve_apps" / "model.py").is_file()
    assert not list(out.rglob("__pycache__"))
    ins = _check_dockerfile((out / "Dockerfile").read_text())
    assert dict(ins)["FROM"] == f"rayproject/ray:{ray.__version__}-py311-cpu"
    assert json.loads(dict(ins)["CMD"]) == ["serve", "run", "serve_config.yaml"]
    assert "8080" in dict(ins)["EXPOSE"] and "127.0.0.1:8080/-/healthz" in dict(ins)["HEALTHCHECK"]
    reqs = (out / "requirements.txt").read_text().split()
    assert reqs and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", r) for r in reqs), reqs
    assert f"ray[serve]=={ray.__version__}" in reqs and not any(r.startswith("torch") for r in reqs)
    config = yaml.safe_load((out / "serve_config.yaml").read_text())
    app = config["applications"][0]
    assert app["name"] == "iris-tiny" and app["import_path"] == "serve_apps.model:app"
    assert app["args"]["artifact"] == "/home/ray/app/artifact"
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8080}
    # What the container runs must import from the context alone: src/ on PYTHONPATH.
    code = "import serve_apps.model, automodel.serve; print(serve_apps.model.__file__)"
    env = {**os.environ, "PYTHONPATH": str(out / "src")}
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and res.stdout.startswith(str(out / "src")), res.stderr[-2000:]


def test_deploy_docker_cli_writes_the_context(artifact, tmp_path):
    res = run_cli(
        "deploy", str(artifact), "--docker", "--out", str(tmp_path / "ctx"), "--port", "9000"
    )
    assert res.returncode == 0, res.stderr
    assert "docker build -t iris-tiny:" in res.stdout and "-p 9000:9000" in res.stdout
    assert "EXPOSE 9000" in (tmp_path / "ctx" / "Dockerfile").read_text()
    again = run_cli("deploy", str(artifact), "--docker", "--out", str(tmp_path / "ctx"))
    assert again.returncode == 2 and "not empty" in again.stderr


def _fake_artifact(path):
    path.mkdir()
    (path / "card.json").write_text(json.dumps({"name": "x"}))
    return path


def test_docker_context_refuses_a_non_artifact_and_a_used_directory(tmp_path):
    with pytest.raises(ArtifactError, match="no card.json"):
        write_docker_context(tmp_path, tmp_path / "ctx")
    art = _fake_artifact(tmp_path / "artifact")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(ArtifactError, match="not empty"):
        write_docker_context(art, tmp_path / "used")
