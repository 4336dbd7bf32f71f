"""The OpenAPI 3.1 document a server publishes at /openapi.json, built from the artifact.

Concrete paths (the model's name, its columns) rather than templates, so a generic client or a
schema fuzzer sees exactly what this server accepts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automodel.serve._predictor import Predictor

DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
NUMERIC = {"type": ["number", "boolean", "null"]}
ANY_VALUE = {"type": ["number", "string", "boolean", "null"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict | None, auth: bool, errors: tuple[int, ...]) -> dict:
    out: dict[str, Any] = {"200": {"description": "OK"}}
    if ok is not None:
        out["200"]["content"] = {"application/json": {"schema": ok}}
    why = {
        400: "Malformed request",
        401: "Missing or invalid bearer token",
        404: "Unknown model or route",
        405: "Method not allowed",
        413: "Body or row count over the limit",
        422: "Rows that cannot be encoded (width, type, value)",
        503: "Overloaded: retry later",
    }
    for code in (*errors, *((401,) if auth else ()), 503):
        out[str(code)] = {
            "description": why[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return out


def openapi_schema(predictor: Predictor, name: str, *, auth: bool = False) -> dict:
    """OpenAPI for the routes of one model: /predict, KServe v1 and Open Inference Protocol v2."""
    prep = predictor.artifact.preprocessor
    cols = [c.name for c in prep.columns]
    value = {c.name: NUMERIC if c.kind == "numeric" else ANY_VALUE for c in prep.columns}
    # Dropped columns and the target may ride along in a record (a row of the training file): ignored.
    optional = {
        k: {"description": "ignored"} for k in [*prep.dropped, prep.target] if k not in value
    }
    numeric = all(c.kind == "numeric" for c in prep.columns)
    list_row = {
        "type": "array",
        "minItems": len(cols),
        "maxItems": len(cols),
        "items": NUMERIC if numeric else ANY_VALUE,
        "description": f"values in column order: {', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''}",
    }
    record_row = {
        "type": "object",
        "properties": {**value, **optional},
        "required": cols,
        "additionalProperties": False,
    }
    classes = predictor.classes
    label = {"type": ["integer", "string", "number", "boolean"]} if classes else {"type": "number"}
    predictions = {
        "type": "object",
        "required": ["predictions", "model", "version"],
        "properties": {
            "predictions": {"type": "array", "items": label},
            "model": {"type": "string"},
            "version": {"type": "string"},
            "probabilities": {
                "type": "array",
                "items": {"type": "array", "items": {"type": ["number", "null"]}},
            },
            "classes": {"type": ["array", "null"]},
        },
    }

    def rows_request(keys: tuple[str, ...]) -> dict:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{k: _ref("Rows") for k in keys},
                "probabilities": {
                    "type": "boolean",
                    "description": "also return class probabilities",
                },
            },
            "oneOf": [{"required": [k]} for k in keys],
        }

    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": DATATYPES},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    infer_request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "minItems": 1, "items": tensor},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    }
    infer_response = {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    }
    secured = [{"bearer": []}] if auth else []
    v2 = f"/v2/models/{name}"

    def op(
        summary: str,
        ok: dict | None,
        errors: tuple[int, ...] = (),
        body: dict | None = None,
        open_route: bool = False,
    ) -> dict:
        o: dict[str, Any] = {
            "summary": summary,
            "responses": _responses(ok, auth and not open_route, errors),
        }
        if body is not None:
            o["requestBody"] = _json_body(body)
        if auth and not open_route:
            o["security"] = secured
        return o

    predict_errors = (400, 413, 422)
    paths = {
        "/predict": {
            "post": op(
                'Predict: the plain format ({"features": [[...]]}) or {"instances": [...]}',
                predictions,
                predict_errors,
                rows_request(("features", "instances")),
            )
        },
        f"/v1/models/{name}:predict": {
            "post": op(
                "KServe v1 predict",
                predictions,
                predict_errors,
                rows_request(("instances", "inputs")),
            )
        },
        f"/v1/models/{name}": {"get": op("KServe v1 model status", {"type": "object"})},
        "/v2/health/live": {
            "get": op("Open Inference Protocol: server live", None, open_route=True)
        },
        "/v2/health/ready": {
            "get": op("Open Inference Protocol: server ready", None, open_route=True)
        },
        v2: {"get": op("Open Inference Protocol: model metadata", {"type": "object"})},
        f"{v2}/ready": {"get": op("Open Inference Protocol: model ready", None)},
        f"{v2}/infer": {
            "post": op(
                "Open Inference Protocol: infer", infer_response, predict_errors, infer_request
            )
        },
    }
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": f"automodel: {name}",
            "version": predictor.version,
            "description": f"{predictor.task} model ({predictor.artifact.card.family}); "
            f"inputs: {len(cols)} columns",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Rows": {
                    "oneOf": [
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": list_row,
                            "description": "rows as lists",
                        },
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": record_row,
                            "description": "rows as records",
                        },
                    ]
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            }
        },
    }
    if auth:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc
