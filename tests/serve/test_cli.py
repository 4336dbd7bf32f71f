"""`automodel deploy` writes a Serve config Ray accepts; `serve`/`deploy` refuse bad input in one
line (exit 2) before starting anything."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
import yaml

from automodel.cli import main
from tests.conftest import run_cli


def test_deploy_writes_a_config_serve_accepts(digits_artifact, tmp_path, capsys):
    from ray.serve.schema import ServeDeploySchema

    artifact, _ = digits_artifact
    out = tmp_path / "serve.yaml"
    r = run_cli("deploy", str(artifact.path), "--out", str(out), "--port", "8123")
    assert r.returncode == 0, r.stderr
    assert f"serve deploy {out}" in r.stdout
    text = out.read_text()
    assert text.startswith("# Ray Serve config for model 'digits' version 1")
    config = yaml.safe_load(text)
    ServeDeploySchema.model_validate(config)
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8123}  # local unless asked
    app = config["applications"][0]
    assert app["name"] == "digits" and app["import_path"] == "serve_apps.model:app"
    assert app["args"] == {"artifact": str(artifact.path.resolve())}
    dep = app["deployments"][0]
    assert dep["autoscaling_config"]["max_replicas"] == 4 and dep["max_queued_requests"] == 256
    assert dep["user_config"]["artifact"] == str(artifact.path.resolve())
    # stdout by default, and --name renames the model in the API
    assert main(["deploy", str(artifact.path), "--name", "pixels"]) == 0
    assert "- name: pixels" in capsys.readouterr().out
    # every interface only when asked, and the header says what that means
    assert main(["deploy", str(artifact.path), "--public"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["http_options"]["host"] == "0.0.0.0"
    assert "# http_options.host 0.0.0.0: every interface" in text


def test_app_builder_reads_the_artifacts_serve_section(tmp_path, digits):
    from automodel.errors import ArtifactError
    from automodel.spec import Spec
    from serve_apps.model import app
    from tests.serve.conftest import make_artifact

    artifact, _ = make_artifact(
        tmp_path / "artifact",
        Spec(
            name="d", serve={"min_replicas": 2, "max_replicas": 2, "num_cpus": 0.5, "max_rows": 7}
        ),
        "logistic",
        dataset=digits,
    )
    assert artifact.card["serve"]["max_rows"] == 7
    deployment = app({"artifact": str(artifact.path)})._bound_deployment
    assert deployment.num_replicas == 2 and deployment.ray_actor_options["num_cpus"] == 0.5
    assert deployment.user_config["max_rows"] == 7 and deployment.user_config["name"] == "d"
    scaled = app({"artifact": str(artifact.path), "max_replicas": 3})._bound_deployment
    assert scaled._deployment_config.autoscaling_config.max_replicas == 3
    with pytest.raises(ArtifactError, match="needs args.artifact"):
        app({})


def test_user_errors_are_one_line_exit_2(digits_artifact, tmp_path, monkeypatch, capsys):
    artifact, _ = digits_artifact
    r = run_cli("serve", str(tmp_path / "nope"))
    assert (
        r.returncode == 2
        and r.stderr.strip() == f"artifact not found: {tmp_path / 'nope'} is not a directory"
    )
    assert main(["deploy", str(artifact.path), "--port", "0"]) == 2
    assert capsys.readouterr().err.strip().startswith("spec error: serve.port:")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(artifact.path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and len(err.strip().splitlines()) == 1
    # a token variable named in the spec but unset: refuse rather than serve an open API
    locked = tmp_path / "locked"
    shutil.copytree(artifact.path, locked)
    card = json.loads((locked / "card.json").read_text())
    card["serve"]["auth_token_env"] = "AUTOMODEL_TEST_UNSET_TOKEN"
    (locked / "card.json").write_text(json.dumps(card))
    monkeypatch.delenv("AUTOMODEL_TEST_UNSET_TOKEN", raising=False)
    assert main(["serve", str(locked)]) == 2
    assert "AUTOMODEL_TEST_UNSET_TOKEN is not set" in capsys.readouterr().err
