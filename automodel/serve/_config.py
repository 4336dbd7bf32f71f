"""`automodel deploy`: the Serve config YAML for an artifact (``serve deploy`` / ``serve run`` take it as is)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from automodel.artifact import read_artifact
from automodel.serve._settings import serve_config, serve_settings

HEADER = """\
# Ray Serve config for model {name!r} version {version} (written by `automodel deploy`).
#   cluster:  serve deploy {file}        (Ray started with the env below, dashboard on :8265)
#   local:    serve run {file}
# http_options.host {host}: {host_note}
# Fast ingress: start Ray with RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1 in its
# environment (`ray start --head` on every node); without them Serve's Python proxy is used.
# Add RAY_SERVE_HAPROXY_RETRY_ON="conn-failure empty-response" RAY_SERVE_HAPROXY_RETRIES=1 so a
# request whose replica dies before answering is replayed once on another (`automodel serve` does).
# New model version: point user_config.artifact at the new artifact and `serve deploy` again; the
# replicas reload it in place without dropping requests. Every node must see the artifact path
# and have automodel installed (the project's Docker image, or a runtime_env).
"""


def deploy_config(
    artifact_path: str | Path,
    *,
    port: int | None = None,
    host: str | None = None,
    overrides: dict[str, Any] | None = None,
    path_in_config: str | None = None,
) -> dict[str, Any]:
    """The Serve config dict (validated against Ray's ServeDeploySchema).

    ``path_in_config``: where the cluster (or a container image) sees the artifact, when that is
    not where this machine does.
    """
    from ray.serve.schema import ServeDeploySchema

    artifact = read_artifact(artifact_path)
    settings = serve_settings(artifact, {"port": port, **(overrides or {})})
    config = serve_config(artifact, settings, host=host)
    if path_in_config is not None:
        app = config["applications"][0]
        app["args"]["artifact"] = app["deployments"][0]["user_config"]["artifact"] = str(
            path_in_config
        )
    ServeDeploySchema.model_validate(config)
    return config


def render_deploy_config(
    artifact_path: str | Path,
    *,
    port: int | None = None,
    host: str | None = None,
    overrides: dict[str, Any] | None = None,
    path_in_config: str | None = None,
    file: str | Path | None = None,
) -> str:
    """The YAML text, with a how-to header. ``functools.partial(render_deploy_config, artifact)``
    called as ``(path_in_image, port)`` is what a Docker build context needs."""
    config = deploy_config(
        artifact_path, port=port, host=host, overrides=overrides, path_in_config=path_in_config
    )
    app = config["applications"][0]
    version = read_artifact(artifact_path).version
    host = config["http_options"]["host"]
    note = (
        "every interface; keep auth (serve.auth_token_env) or a firewall in front"
        if host in ("0.0.0.0", "::")
        else "reachable from this node only; `automodel deploy --public` binds every interface"
    )
    header = HEADER.format(
        name=app["name"], version=version, file=file or "serve.yaml", host=host, host_note=note
    )
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def write_deploy_config(
    artifact_path: str | Path,
    *,
    out: str | Path | None = None,
    port: int | None = None,
    host: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> str:
    """Render the YAML; write it to ``out`` when given. Returns the text."""
    text = render_deploy_config(artifact_path, port=port, host=host, overrides=overrides, file=out)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text


def apply_config(config: dict[str, Any], *, timeout_s: float = 120, stop=None) -> bool:
    """Deploy ``config`` to the Serve instance of the connected Ray cluster (start Serve if needed),
    as `serve run` does, and wait until its applications run.

    Public Serve APIs only: ``serve.start`` with the config's ``http_options`` and
    ``proxy_location``, then ``serve.run_many`` of each application (see :func:`_application`).

    Returns:
        True once running; False if ``stop`` (a threading.Event) was set first.

    Raises:
        ServeError: an application failed to deploy
            or did not become healthy in time.
    """
    import time

    from ray import serve
    from ray.serve.schema import ServeDeploySchema

    from automodel.serve._launch import ServeError

    ServeDeploySchema.model_validate(config)
    if "http_options" in config:  # an update of a running app (`automodel rollout`) has none
        _start_serve(config["http_options"] or {}, config.get("proxy_location"))
    targets = [
        serve.RunTarget(_application(app), name=app["name"], route_prefix=app["route_prefix"])
        for app in config["applications"]
    ]
    serve.run_many(
        targets, wait_for_ingress_deployment_creation=False, wait_for_applications_running=False
    )
    names = [a["name"] for a in config["applications"]]
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if stop is not None and stop.is_set():
            return False
        apps = serve.status().applications
        states = {n: apps[n].status for n in names if n in apps}
        failed = {
            n: apps[n].message for n, st in states.items() if st in ("DEPLOY_FAILED", "UNHEALTHY")
        }
        if failed:
            raise ServeError(
                "; ".join(
                    f"{n}: {m.strip().splitlines()[-1][:300] if m else 'failed'}"
                    for n, m in failed.items()
                )
            )
        if len(states) == len(names) and all(st == "RUNNING" for st in states.values()):
            # RUNNING can be the previous version's status: wait until no deployment is updating.
            if all(d.status == "HEALTHY" for n in names for d in apps[n].deployments.values()):
                return True
        time.sleep(0.5)
    raise ServeError(f"applications {names} not running after {timeout_s:.0f}s")


def _application(app: dict[str, Any]):
    """One config entry as a bound application, as ``serve run CONFIG`` builds it: the builder
    runs with ``args`` (it checks them: the artifact must load), then the deployment entry's
    options (replicas, queue bounds, ``user_config``) are applied to the module's deployment of
    that name."""
    import importlib

    from ray import serve

    from automodel.cluster._compat import with_code_version

    module_name, _, attr = app["import_path"].partition(":")
    module = importlib.import_module(module_name)
    built = getattr(module, attr)(app.get("args") or {})
    entries = {d["name"]: d for d in app.get("deployments") or []}
    for value in vars(module).values():
        if isinstance(value, serve.Deployment) and value.name in entries:
            options = {k: v for k, v in entries[value.name].items() if k != "name"}
            return with_code_version(value.options(**options), _code_version(module)).bind()
    return built


def _code_version(module) -> str:
    """The same for every deploy of the same code (the deployment's module and automodel's
    version): a redeploy that changes only ``user_config`` then reconfigures replicas in place."""
    import hashlib

    import automodel

    source = Path(module.__file__).read_bytes() if getattr(module, "__file__", None) else b""
    digest = hashlib.sha256(source + automodel.__version__.encode()).hexdigest()[:16]
    return f"automodel-{digest}"


class _Ignored(logging.Handler):
    """Collects Serve's "new HTTP config is ignored" warning (it only logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "HTTP config is ignored" in record.getMessage():
            self.messages.append(record.getMessage())


def _start_serve(http: dict[str, Any], proxy_location: str | None) -> None:
    """``serve.start``; when Serve already runs with other HTTP options (they cannot change while
    it runs) say so in a warning naming them, instead of Serve's log line nobody sees."""
    import warnings

    from ray import serve

    handler, logger = _Ignored(), logging.getLogger("ray.serve")
    # Serve's INFO lines ("Started Serve", "Connecting to existing Serve app") are not ours to
    # print on the user's console; warnings still are.
    logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    logger.addHandler(handler)
    try:
        serve.start(http_options=http, proxy_location=proxy_location)
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        warnings.warn(
            f"Ray Serve already runs on this cluster with other HTTP options, so {http} were not "
            f"applied ({handler.messages[0]}); `serve shutdown` first to change them",
            stacklevel=3,
        )
