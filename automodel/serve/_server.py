"""The request handler: routes, auth, input checks and the three protocols, with no web framework.

``ModelServer.handle(method, path, headers, body)`` returns a :class:`Reply`. The Ray Serve
deployment (serve_apps/model.py) adapts Starlette requests to it and injects ``infer``, the
(batched) model call; tests drive it directly. Every bad input ends as a 4xx naming the problem.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

import numpy as np

from automodel.errors import DataError
from automodel.serve._openapi import openapi_schema
from automodel.serve._predictor import Predictor
from automodel.serve._protocol import (
    BINARY_HEADER,
    PREDICT_KEYS,
    V1_KEYS,
    RequestError,
    dumps,
    parse_rows_request,
    parse_v2_request,
    v2_datatype,
    v2_response,
)

logger = logging.getLogger(__name__)
JSON = "application/json"
Infer = Callable[[np.ndarray], Awaitable[np.ndarray]]
# Probes and the schema stay open when a token is set: load balancers and docs carry no token.
# The index (GET /: the model's inputs and classes) is not one of them.
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/openapi.json"})
_MODEL_PATH = re.compile(r"^/v[12]/models/([^/:]+)")


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def _json(status: int, obj, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, dumps(obj), {"content-type": JSON, **(headers or {})})


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return _json(status, {"error": message}, headers)


class ModelServer:
    """Answers HTTP requests for one model version.

    Args:
        predictor: the loaded artifact.
        name: model name in the API (default: the card's name).
        max_rows: rows allowed in one request (more: 413).
        token: bearer token every non-probe request must carry; None: no auth.
        infer: coroutine running the model on encoded rows (default: directly).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        name: str | None = None,
        max_rows: int = 10_000,
        token: str | None = None,
        infer: Infer | None = None,
    ):
        self.predictor = predictor
        self.name = name or predictor.name
        self.version = predictor.version
        self.max_rows = max_rows
        self.token = token.encode() if token else None
        self.infer = infer or self._infer_direct
        self.openapi = dumps(openapi_schema(predictor, self.name, auth=token is not None))
        n, v = self.name, self.version
        self.routes: dict[str, dict[str, Callable]] = {
            "/": {"GET": self._index},
            "/openapi.json": {"GET": lambda h, b: Reply(200, self.openapi, {"content-type": JSON})},
            "/predict": {"POST": lambda h, b: self._predict(b, PREDICT_KEYS)},
            "/v1/models": {"GET": lambda h, b: _json(200, {"models": [n]})},
            f"/v1/models/{n}": {"GET": lambda h, b: _json(200, {"name": n, "ready": True})},
            f"/v1/models/{n}:predict": {"POST": lambda h, b: self._predict(b, V1_KEYS)},
            "/v2": {"GET": self._server_metadata},
            "/v2/health/live": {"GET": self._ok},
            "/v2/health/ready": {"GET": self._ok},
        }
        for base in (f"/v2/models/{n}", f"/v2/models/{n}/versions/{v}"):
            self.routes[base] = {"GET": self._model_metadata}
            self.routes[f"{base}/ready"] = {"GET": self._ok}
            self.routes[f"{base}/infer"] = {"POST": self._infer_v2}

    # ---- entry point ------------------------------------------------------------------------
    def precheck(self, method: str, path: str, headers: Mapping[str, str]) -> Reply | None:
        """What can be answered from the request line and headers alone (unknown route, wrong
        method, missing or wrong token), before the body is read; None when the body is wanted."""
        methods = self.routes.get(path)
        if methods is None:
            return self._not_found(method, path)
        if method not in methods:
            allow = ", ".join(methods)
            return error_reply(
                405, f"{method} {path} is not allowed; use {allow}", {"allow": allow}
            )
        if self.token is not None and path not in OPEN_PATHS:
            return self._check_token(headers.get("authorization"))
        return None

    async def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        refused = self.precheck(method, path, headers)
        if refused is not None:
            return refused
        fn = self.routes[path][method]
        try:
            reply = fn(headers, body)
            return (await reply) if not isinstance(reply, Reply) else reply
        except RequestError as exc:
            return error_reply(exc.status, exc.message)
        except Exception as exc:  # a bug or a broken model, never the client's input: log it
            logger.exception("error answering %s %s", method, path)
            return error_reply(500, f"internal error: {type(exc).__name__}")

    def _not_found(self, method: str, path: str) -> Reply:
        m = _MODEL_PATH.match(path)
        if m and m.group(1) != self.name:
            return error_reply(
                404, f"model {m.group(1)!r} not found; this server serves {self.name!r}"
            )
        if path.startswith(f"/v2/models/{self.name}/versions/"):
            return error_reply(
                404, f"{path}: unknown version or route; serving version {self.version!r}"
            )
        return error_reply(
            404,
            f"no route {method} {path}; see GET /openapi.json "
            f"(POST /predict, /v1/models/{self.name}:predict, /v2/models/{self.name}/infer)",
        )

    def _check_token(self, header: str | None) -> Reply | None:
        challenge = {"www-authenticate": 'Bearer realm="automodel"'}
        if not header:
            return error_reply(
                401, "missing bearer token: send 'Authorization: Bearer <token>'", challenge
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token
        ):
            return error_reply(401, "invalid bearer token", challenge)
        return None

    # ---- inference ----------------------------------------------------------------------------
    async def _infer_direct(self, X: np.ndarray) -> np.ndarray:
        return self.predictor.run(X)

    def encode(self, rows: list, strict: bool = True) -> np.ndarray:
        """Rows -> encoded matrix, every failure a RequestError (413 too many rows, 422 bad values).

        ``strict``: JSON bodies must type numeric columns as numbers; v2 tensors are already typed
        by their datatype, and a BYTES tensor carries numbers as strings.
        """
        if not rows:
            raise RequestError(400, "empty batch: send at least one row")
        if len(rows) > self.max_rows:
            raise RequestError(
                413,
                f"too many rows: {len(rows)} in one request, the limit is "
                f"{self.max_rows} (serve.max_rows)",
            )
        try:
            X = self.predictor.encode(rows, strict=strict)
        except DataError as exc:
            raise RequestError(422, _clip(str(exc))) from None
        except RecursionError:
            raise RequestError(400, "rows nest too deeply") from None
        except Exception as exc:  # any other failure to encode is still the input's fault
            raise RequestError(
                422, _clip(f"rows could not be encoded: {type(exc).__name__}: {exc}")
            ) from None
        if not np.isfinite(X).all():  # e.g. 1e308 scales past float32's range
            r, c = np.argwhere(~np.isfinite(X))[0]
            raise RequestError(
                422, f"row {r}: encoded feature {c} is not finite: a value is out of range"
            )
        return X

    async def _predict(self, body: bytes, keys: tuple[str, ...]) -> Reply:
        rows, want_proba = parse_rows_request(body, keys)
        if want_proba and self.predictor.task != "classification":
            raise RequestError(400, "probabilities: this is a regression model, it has none")
        out = await self.infer(self.encode(rows))
        preds, proba = self.predictor.decode(out, want_proba)
        doc = {"predictions": preds, "model": self.name, "version": self.version}
        if want_proba:
            doc["probabilities"] = proba
            doc["classes"] = self.predictor.classes
        return _json(200, doc)

    async def _infer_v2(self, headers: Mapping[str, str], body: bytes) -> Reply:
        req = parse_v2_request(body, headers.get(BINARY_HEADER), self.predictor.input_columns)
        out = await self.infer(self.encode(req.rows, strict=False))
        preds, _ = self.predictor.decode(out)
        n = len(preds)
        outputs = [
            {"name": "predictions", "shape": [n], "datatype": v2_datatype(preds), "data": preds}
        ]
        if self.predictor.task == "classification":
            outputs.append(
                {
                    "name": "probabilities",
                    "shape": list(out.shape),
                    "datatype": "FP32",
                    "data": out.astype(np.float32).reshape(-1).tolist(),
                }
            )
        if req.outputs is None:
            binary = dict.fromkeys((o["name"] for o in outputs), req.binary_default)
        else:
            known = {o["name"] for o in outputs}
            unknown = [name for name, _ in req.outputs if name not in known]
            if unknown:
                raise RequestError(
                    400,
                    f"unknown output(s) {', '.join(map(repr, unknown))}; "
                    f"this model has {', '.join(sorted(known))}",
                )
            binary = dict(req.outputs)
            outputs = [o for o in outputs if o["name"] in binary]
        data, extra = v2_response(self.name, self.version, req.id, outputs, binary)
        ctype = "application/octet-stream" if extra else JSON
        return Reply(200, data, {"content-type": ctype, **extra})

    # ---- metadata -------------------------------------------------------------------------------
    def _ok(self, headers, body) -> Reply:
        return Reply(200, b"", {})

    def _index(self, headers, body) -> Reply:
        card = self.predictor.artifact.card
        return _json(
            200,
            {
                "model": self.name,
                "version": self.version,
                "task": card.task,
                "family": card.family,
                "inputs": self.predictor.input_columns,
                "classes": self.predictor.classes,
                "openapi": "/openapi.json",
            },
        )

    def _server_metadata(self, headers, body) -> Reply:
        from automodel import __version__

        return _json(
            200, {"name": "automodel", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    def _model_metadata(self, headers, body) -> Reply:
        prep = self.predictor.artifact.preprocessor
        numeric = all(c.kind == "numeric" for c in prep.columns)
        outputs = [
            {
                "name": "predictions",
                "datatype": "INT64" if self.predictor.task == "classification" else "FP64",
                "shape": [-1],
            }
        ]
        if self.predictor.classes:
            outputs[0]["datatype"] = v2_datatype(list(self.predictor.classes))
            outputs.append(
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [-1, len(self.predictor.classes)],
                }
            )
        return _json(
            200,
            {
                "name": self.name,
                "versions": [self.version],
                "platform": "onnxruntime_onnx",
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP64" if numeric else "BYTES",
                        "shape": [-1, len(prep.columns)],
                    }
                ],
                "outputs": outputs,
            },
        )


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
