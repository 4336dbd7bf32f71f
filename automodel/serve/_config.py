"""`automodel deploy`: the Serve config YAML for an artifact (``serve deploy`` / ``serve run`` take it as is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from automodel.artifact import read_artifact
from automodel.serve._settings import model_name, serve_config, serve_settings

HEADER = """\
# Ray Serve config for model {name!r} version {version} (written by `automodel deploy`).
#   cluster:  serve deploy {file}        (Ray started with the env below, dashboard on :8265)
#   local:    serve run {file}
# Fast ingress: start Ray with RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1 in its
# environment (`ray start --head` on every node); without them Serve's Python proxy is used.
# New model version: point user_config.artifact at the new artifact and `serve deploy` again; the
# replicas reload it in place without dropping requests. Every node must see the artifact path
# and have automodel installed (the project's Docker image, or a runtime_env).
"""


def deploy_config(artifact_path: str | Path, *, port: int | None = None, host: str | None = None,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Serve config dict (validated against Ray's ServeDeploySchema)."""
    from ray.serve.schema import ServeDeploySchema

    artifact = read_artifact(artifact_path)
    settings = serve_settings(artifact, {"port": port, **(overrides or {})})
    config = serve_config(artifact, settings, host=host or "0.0.0.0")
    ServeDeploySchema.model_validate(config)
    return config


def write_deploy_config(artifact_path: str | Path, *, out: str | Path | None = None, port: int | None = None,
                        host: str | None = None, overrides: dict[str, Any] | None = None) -> str:
    """Render the YAML (with a how-to header); write it to ``out`` when given. Returns the text."""
    config = deploy_config(artifact_path, port=port, host=host, overrides=overrides)
    artifact = read_artifact(artifact_path)
    name = model_name(artifact, serve_settings(artifact, overrides))
    header = HEADER.format(name=name, version=artifact.version, file=out or "serve.yaml")
    text = header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text
