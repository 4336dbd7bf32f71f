"""Serve settings: the spec's ``serve`` section, stored with the artifact, rendered to Ray Serve options.

One function builds the application entry of a Serve config (``applications[i]``); `automodel serve`
deploys exactly that entry and `automodel deploy` writes it to YAML, so both run the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from automodel import storage
from automodel.artifact import Artifact
from automodel.errors import SpecError
from automodel.spec import ServeSpec

IMPORT_PATH = "serve_apps.model:app"
DEPLOYMENT = "Model"
# What a running replica may change in place on `serve deploy` (user_config): no restart, no drop.
LIVE_KEYS = (
    "max_batch_size",
    "batch_wait_timeout_s",
    "max_rows",
    "max_body_bytes",
    "auth_token_env",
)


def serve_settings(artifact: Artifact, overrides: Mapping[str, Any] | None = None) -> ServeSpec:
    """The artifact's serve section (card, else the run's spec.yaml, else defaults) plus overrides.

    Raises:
        SpecError: an override is invalid (``serve.<key>: <why>``).
    """
    base: dict[str, Any] = {}
    if artifact.card.serve is not None:
        base = dict(artifact.card.serve)
    else:
        spec_file = artifact.path.parent / "spec.yaml"
        if spec_file.is_file():
            from automodel.spec import load_spec

            base = load_spec(spec_file).serve.model_dump()
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServeSpec.model_validate(base)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in ("serve", *err["loc"]))
        raise SpecError(key, err["msg"]) from None


def model_name(artifact: Artifact, settings: ServeSpec) -> str:
    return settings.name or artifact.name


def deployment_options(settings: ServeSpec) -> dict[str, Any]:
    """Ray Serve deployment options: replicas or autoscaling, queue bounds, CPUs, health checks."""
    opts: dict[str, Any] = {
        "max_ongoing_requests": settings.max_ongoing_requests,
        # A full queue answers 503 at once: overload must not turn into unbounded latency.
        "max_queued_requests": settings.max_queued_requests,
        "ray_actor_options": {"num_cpus": settings.num_cpus},
        "health_check_period_s": 5.0,
        "health_check_timeout_s": 30.0,
        "graceful_shutdown_wait_loop_s": 0.5,
        "graceful_shutdown_timeout_s": 10.0,
        # A log line a request costs ~6% of a replica's CPU at full load; Ray's metrics count them.
        "logging_config": {"enable_access_log": False},
    }
    if settings.min_replicas == settings.max_replicas:
        opts["num_replicas"] = settings.min_replicas
    else:
        opts["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "initial_replicas": max(1, settings.min_replicas),
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.target_ongoing_requests,
            "upscale_delay_s": settings.upscale_delay_s,
            "downscale_delay_s": settings.downscale_delay_s,
            "metrics_interval_s": 1.0,
            "look_back_period_s": 3.0,
        }
    return opts


def user_config(artifact_path: str | Path, settings: ServeSpec, name: str) -> dict[str, Any]:
    """What `reconfigure` receives: the artifact to load and the settings a replica applies live."""
    return {
        "artifact": str(storage.resolve(artifact_path)),  # a URI stays one: every node reads it
        "name": name,
        "threads": max(1, int(settings.num_cpus)),
        **{k: getattr(settings, k) for k in LIVE_KEYS},
        # How this app was deployed, so `automodel rollout` can redeploy it with only the
        # rollout changed (Serve has no public call that reads a running deployment's options).
        "deploy": {
            "route_prefix": settings.route_prefix,
            "options": deployment_options(settings),
        },
    }


def application(artifact: Artifact, settings: ServeSpec) -> dict[str, Any]:
    """One entry of a Serve config's ``applications`` list."""
    name = model_name(artifact, settings)
    return {
        "name": name,
        "route_prefix": settings.route_prefix,
        "import_path": IMPORT_PATH,
        "args": {"artifact": str(artifact.source)},
        "deployments": [
            {
                "name": DEPLOYMENT,
                **deployment_options(settings),
                "user_config": user_config(artifact.source, settings, name),
            }
        ],
    }


def serve_config(
    artifact: Artifact, settings: ServeSpec, host: str | None = None
) -> dict[str, Any]:
    """A whole Serve config (``serve deploy`` / ``serve run`` accept it unchanged)."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host or settings.host, "port": settings.port},
        "applications": [application(artifact, settings)],
    }


def auth_token(env_name: str | None) -> str | None:
    """The bearer token from ``serve.auth_token_env``; None when auth is off.

    Raises:
        SpecError: the variable is named but unset or empty, which would leave the API open.
    """
    if not env_name:
        return None
    token = os.environ.get(env_name, "")
    if not token.strip():
        raise SpecError(
            "serve.auth_token_env",
            f"environment variable {env_name} is not set (or empty); "
            "set it to the bearer token, or remove auth_token_env",
        )
    return token.strip()
