"""The Ray Serve application that serves an automodel artifact.

    serve run serve_apps.model:app artifact=automodel_runs/digits/<run>/artifact
    serve deploy serve.yaml            # written by `automodel deploy ARTIFACT`

``app`` is an application builder: Serve calls it with the config's ``args`` (``artifact``, and any
``serve`` setting to override). The deployment is a plain Starlette ``__call__`` handler, the
cheapest ingress Serve has (behind HAProxy ≈1.6x a FastAPI ingress on this project's machine). The
artifact arrives through ``user_config``, so `serve deploy` with a new artifact reloads replicas in
place: no restart, no dropped request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from automodel.artifact import read_artifact
from automodel.serve._server import ModelServer, error_reply
from automodel.serve._settings import (
    DEPLOYMENT,
    deployment_options,
    model_name,
    serve_settings,
    user_config,
)

logger = logging.getLogger("ray.serve")


@serve.deployment(name=DEPLOYMENT)
class ModelDeployment:
    """One replica: a Predictor (ONNX Runtime) behind the request handler, with dynamic batching."""

    def __init__(self) -> None:
        self.server: ModelServer | None = None
        self.config: dict[str, Any] = {}
        self.max_body_bytes = 8 * 1024 * 1024
        self.max_batch_size = 32
        self.inflight = 0
        self._batch_cap = 0
        self._probe: np.ndarray | None = None
        self.canary = None  # automodel.serve._canary.Canary during `automodel rollout`
        self.canary_artifact: str | None = None
        self.tally: dict[tuple[str, int], int] = {}  # (version, status // 100) -> answers
        self._metrics: asyncio.Task | None = None

    # ---- configuration (first start and every `serve deploy`) -----------------------------------
    def reconfigure(self, config: dict[str, Any]) -> None:
        from automodel.serve._predictor import Predictor
        from automodel.serve._settings import auth_token

        reload_keys = ("artifact", "name", "threads", "max_rows", "auth_token_env")
        if self.server is None or any(config.get(k) != self.config.get(k) for k in reload_keys):
            promoted = self.canary is not None and config["artifact"] == self.canary_artifact
            predictor = (
                self.canary.candidate.predictor
                if promoted  # `automodel rollout` promoted the candidate this replica holds
                else Predictor(config["artifact"], threads=config.get("threads", 1))
            )
            probe = predictor.self_test()  # a model that cannot answer must never take traffic
            server = ModelServer(
                predictor,
                name=config.get("name"),
                max_rows=config.get("max_rows", 10_000),
                token=auth_token(config.get("auth_token_env")),
                infer=self.infer,
            )
            self.server, self._probe = (
                server,
                probe,
            )  # one assignment: requests see old or new, never half
            logger.info(
                "serving %s version %s from %s", server.name, server.version, config["artifact"]
            )
        self.max_body_bytes = int(config.get("max_body_bytes", self.max_body_bytes))
        self.max_batch_size = int(config.get("max_batch_size", self.max_batch_size))
        self._batch_cap = self.max_batch_size
        self._batched.set_max_batch_size(self.max_batch_size)
        self._batched.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.005)))
        self._set_rollout(config)
        self.config = dict(config)

    def _set_rollout(self, config: dict[str, Any]) -> None:
        """Hold the candidate of ``config["rollout"]`` beside the stable version (or drop it)."""
        from automodel.serve._canary import COLLECTOR_NAMESPACE, Canary

        plan = config.get("rollout")
        old = self.canary
        if not plan:
            self.canary = None
        else:
            try:
                collector = ray.get_actor(plan["collector"], namespace=COLLECTOR_NAMESPACE)
            except ValueError:  # the driver is gone: keep comparing, report nothing
                collector = None
            try:
                if old is not None and plan["candidate"] == self.canary_artifact:
                    candidate = old.candidate
                else:
                    candidate = self._load_candidate(plan["candidate"], config)
            except Exception as exc:  # the stable version must keep serving whatever it is
                logger.exception("the rollout's candidate %s does not load", plan["candidate"])
                if collector is not None:
                    collector.load_failed.remote(plan["step"], f"{type(exc).__name__}: {exc}")
                self.canary = None
                if old is not None:
                    old.close()
                return
            # Both versions called directly (no batching) during a rollout: their latencies are
            # then the same measure, not one with a batching wait and one without.
            stable = self._server_for(self.server.predictor, config)
            self.canary_artifact = plan["candidate"]
            self.canary = Canary(
                stable, candidate, plan["weight"], plan["step"], collector, self.tally
            )
        if old is not None:
            old.close()

    def _load_candidate(self, artifact: str, config: dict[str, Any]) -> ModelServer:
        from automodel.serve._predictor import Predictor

        predictor = Predictor(artifact, threads=config.get("threads", 1))
        try:
            predictor.self_test()
        except Exception as exc:  # shadowed anyway: its failures are the rollout's evidence
            logger.warning("candidate %s fails its self-test: %s", artifact, exc)
        return self._server_for(predictor, config)

    @staticmethod
    def _server_for(predictor, config: dict[str, Any]) -> ModelServer:
        from automodel.serve._settings import auth_token

        return ModelServer(
            predictor,
            name=config.get("name"),
            max_rows=config.get("max_rows", 10_000),
            token=auth_token(config.get("auth_token_env")),
        )

    def rollout_config(self) -> dict[str, Any]:
        """The user_config this replica runs (`automodel rollout` starts from it)."""
        return dict(self.config)

    def check_health(self) -> None:
        """Serve calls this every few seconds: the probe row must still give the same answer."""
        out = self.server.predictor.self_test()
        if self._probe is not None and not np.allclose(out, self._probe, rtol=1e-4, atol=1e-6):
            raise RuntimeError("self-test: the model's answer to the probe row changed")

    # ---- request path ---------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        # Counted from arrival: requests still reading their body are about to want the model too.
        self.inflight += 1
        try:
            response = await self._answer(request)
        finally:
            self.inflight -= 1
        if self.canary is None:  # a canary counts the version that answered itself
            key = (self.server.version, response.status_code // 100)
            self.tally[key] = self.tally.get(key, 0) + 1
        if self._metrics is None:
            self._metrics = asyncio.get_running_loop().create_task(self._export_loop())
        return response

    async def _export_loop(self) -> None:
        """Answers by model version and status class, as ``automodel_serve_requests_total`` in
        Ray's /metrics; summed here and sent once a second (a metric call a request costs more)."""
        from ray.serve.metrics import Counter

        counter = Counter(
            "automodel_serve_requests",
            description="answers by the model version that produced them and HTTP status class",
            tag_keys=("version", "status"),
        )
        while True:
            await asyncio.sleep(1.0)
            # emptied in place: a rollout's Canary counts into this same dict
            tally = dict(self.tally)
            self.tally.clear()
            for (version, cls), n in tally.items():
                counter.inc(n, tags={"version": str(version), "status": f"{cls}xx"})

    async def _answer(self, request: Request) -> Response:
        server = self.server
        scope = request.scope
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        # Route, method and bearer token first: an unauthenticated client must not make a
        # replica buffer up to max_body_bytes of a body it is not allowed to send.
        refused = server.precheck(request.method, path, request.headers)
        if refused is not None:
            return _response(refused)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return _response(
                error_reply(
                    413,
                    f"request body of {length} bytes is over the limit of "
                    f"{self.max_body_bytes} (serve.max_body_bytes)",
                )
            )
        body = await _read_body(request, self.max_body_bytes)
        if body is None:
            return _response(
                error_reply(
                    413,
                    f"request body is over the limit of {self.max_body_bytes} "
                    "bytes (serve.max_body_bytes)",
                )
            )
        canary = self.canary
        if canary is not None:
            return _response(await canary.answer(request.method, path, request.headers, body))
        return _response(await server.handle(request.method, path, request.headers, body))

    async def infer(self, X: np.ndarray) -> np.ndarray:
        """Run the model; join a batch only when other requests are in flight to share it with.

        A batch closes when it holds every request in flight (none left to wait for), when it
        reaches ``max_batch_size``, or after ``batch_wait_timeout_s``: light load pays no wait.

        The yield first lets the requests that arrived with this one reach ``__call__`` (and
        count in ``inflight``): a request that arrives whole (HAProxy buffers each one so that it
        can replay it) never waits for its body, and the model call blocks the event loop, so
        without it each request ran alone to the end and no batch ever formed (8 connections:
        8 requests at the replica in HAProxy's stats, no batch in /metrics, no upscale).
        """
        predictor = self.server.predictor
        await asyncio.sleep(0)
        if self.inflight <= 1 or len(X) >= self.max_batch_size:
            return predictor.run(X)
        size = min(self.max_batch_size, self.inflight)
        if size != self._batch_cap:
            self._batch_cap = size
            self._batched.set_max_batch_size(size)
        return await self._batched((predictor, X))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _batched(self, items: list[tuple[Any, np.ndarray]]) -> list[np.ndarray]:
        # Items encoded before a version swap keep their own predictor: never mix preprocessors.
        results: list[np.ndarray | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, (pred, _) in enumerate(items):
            groups.setdefault(id(pred), []).append(i)
        for idx in groups.values():
            pred = items[idx[0]][0]
            out = pred.run(np.concatenate([items[i][1] for i in idx]))
            start = 0
            for i in idx:
                n = len(items[i][1])
                results[i] = out[start : start + n]
                start += n
        return results


def _response(reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes (chunked uploads carry no Content-Length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def app(args: dict[str, Any]):
    """Application builder: ``args["artifact"]`` (required) plus optional ``serve`` overrides."""
    from automodel.errors import ArtifactError

    args = dict(args or {})
    path = args.pop("artifact", None)
    if not path:
        raise ArtifactError(
            "serve_apps.model:app needs args.artifact: the artifact directory to serve"
        )
    artifact = read_artifact(path)
    settings = serve_settings(artifact, args)
    name = model_name(artifact, settings)
    return ModelDeployment.options(
        **deployment_options(settings), user_config=user_config(artifact.source, settings, name)
    ).bind()
