"""Wire formats: the plain /predict body, KServe v1, Open Inference Protocol v2 (JSON and binary).

Pure functions from request bytes to rows and from predictions to response bytes, so every check
is testable without a server. A bad request raises :class:`RequestError` with the HTTP status and
a message that names the problem.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from automodel.errors import AutomodelError

try:  # orjson parses and writes JSON 3-10x faster; the stdlib is the fallback.
    import orjson

    _loads, _dumps, _JSONError = orjson.loads, orjson.dumps, orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None
    _JSONError = ValueError

    def _loads(b):
        return json.loads(b, parse_constant=_reject_constant)

    def _dumps(o):
        return json.dumps(o, separators=(",", ":")).encode()


class RequestError(AutomodelError):
    """A request the server refuses: ``status`` is the HTTP code (4xx), ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class _NonFinite(ValueError):
    pass


def _reject_constant(token: str):
    raise _NonFinite(token)


def dumps(obj: Any) -> bytes:
    return _dumps(obj)


def parse_json(body: bytes) -> Any:
    """Request bytes -> JSON value; 400 for malformed JSON, 422 for NaN/Infinity tokens."""
    if not body:
        raise RequestError(400, "empty request body: send a JSON object")
    try:
        return _loads(body)
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    except _JSONError as exc:
        fast_error = str(exc)
    except _NonFinite as exc:
        raise _non_finite(exc) from None
    # orjson refuses some valid JSON (integers beyond 64 bits); the stdlib words the other errors.
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise _non_finite(exc) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestError(400, f"malformed JSON: {fast_error}") from None


def _non_finite(exc: _NonFinite) -> RequestError:
    return RequestError(
        422,
        f"non-finite number {exc.args[0]} in the request: JSON numbers must be "
        "finite; send null for a missing value",
    )


def _obj(doc: Any, what: str) -> dict:
    if not isinstance(doc, dict):
        raise RequestError(400, f"{what}: expected a JSON object, got {_kind(doc)}")
    return doc


def _kind(v: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(v), "a number")


def _flag(doc: dict, key: str) -> bool:
    v = doc.get(key, False)
    if not isinstance(v, bool):
        raise RequestError(400, f"{key}: expected true or false, got {_kind(v)}")
    return v


# ---- POST /predict and KServe v1 ----------------------------------------------------------------
PREDICT_KEYS = ("features", "instances")
V1_KEYS = ("instances", "inputs")


def _guarded(parse):
    """A parser bug must not turn odd input into a 5xx: anything unexpected is a 400 naming it."""
    import functools

    @functools.wraps(parse)
    def wrapper(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except RequestError:
            raise
        except RecursionError:
            raise RequestError(400, "malformed request: nested too deeply") from None
        except Exception as exc:
            raise RequestError(
                400, f"malformed request: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    return wrapper


@_guarded
def parse_rows_request(body: bytes, keys: tuple[str, ...]) -> tuple[list, bool]:
    """``{"features": [...]}`` / ``{"instances": [...]}`` (+ ``"probabilities": bool``) -> rows."""
    doc = _obj(parse_json(body), "request body")
    present = [k for k in keys if k in doc]
    if not present:
        got = ", ".join(map(repr, doc)) or "none"
        raise RequestError(
            400,
            f"missing key: send {' or '.join(repr(k) for k in keys)} with a list of rows "
            f"(got keys: {got})",
        )
    if len(present) > 1:
        raise RequestError(400, f"send one of {', '.join(map(repr, present))}, not both")
    unknown = [k for k in doc if k not in keys and k != "probabilities"]
    if unknown:
        raise RequestError(
            400,
            f"unknown key(s) {', '.join(map(repr, unknown))}: expected "
            f"{' or '.join(map(repr, keys))} and optionally 'probabilities'",
        )
    rows = doc[present[0]]
    if not isinstance(rows, list):
        raise RequestError(400, f"{present[0]}: expected a list of rows, got {_kind(rows)}")
    if not rows:
        raise RequestError(400, f"{present[0]}: empty batch, send at least one row")
    return rows, _flag(doc, "probabilities")


# ---- Open Inference Protocol v2 -----------------------------------------------------------------
# datatype -> numpy dtype (BYTES handled apart). https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
V2_DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
BINARY_HEADER = "inference-header-content-length"


class V2Request:
    """A parsed v2 infer request: rows for the predictor and the outputs asked for."""

    def __init__(
        self,
        rows: list,
        outputs: list[tuple[str, bool]] | None,
        request_id: str | None,
        binary_default: bool,
    ):
        self.rows = rows
        self.outputs = outputs
        self.id = request_id
        self.binary_default = binary_default


@_guarded
def parse_v2_request(body: bytes, header_length: str | None, columns: list[str]) -> V2Request:
    """An OIP v2 infer body (JSON, or JSON + binary tensors) -> rows in ``columns`` order.

    One input of shape ``[N, len(columns)]`` holds whole rows; or one input a column, each named
    after it, of shape ``[N]`` (or ``[N, 1]``).
    """
    blob = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise RequestError(
                400, f"Inference-Header-Content-Length: expected an integer, got {header_length!r}"
            ) from None
        if not 0 < n <= len(body):
            raise RequestError(
                400, f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes"
            )
        body, blob = body[:n], body[n:]
    doc = _obj(parse_json(body), "request body")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(
            400,
            'inputs: expected a non-empty list of tensors ({"name", "shape", "datatype", "data"})',
        )
    tensors, offset = [], 0
    for i, t in enumerate(inputs):
        values, shape, offset = _v2_tensor(_obj(t, f"inputs[{i}]"), i, blob, offset)
        tensors.append((t.get("name"), values, shape))
    if offset != len(blob):
        raise RequestError(
            400,
            f"binary data: {len(blob) - offset} byte(s) left over after the inputs' binary_data_size",
        )
    rows = _v2_rows(tensors, columns)
    params = doc.get("parameters") or {}
    binary_default = isinstance(params, dict) and params.get("binary_data_output") is True
    outputs = None
    if "outputs" in doc:
        outs = doc["outputs"]
        if not isinstance(outs, list):
            raise RequestError(400, f"outputs: expected a list, got {_kind(outs)}")
        outputs = []
        for j, o in enumerate(outs):
            o = _obj(o, f"outputs[{j}]")
            if not isinstance(o.get("name"), str):
                raise RequestError(400, f"outputs[{j}].name: expected a string")
            p = o.get("parameters") or {}
            binary = p.get("binary_data", binary_default) if isinstance(p, dict) else binary_default
            outputs.append((o["name"], binary is True))
    rid = doc.get("id")
    return V2Request(rows, outputs, rid if isinstance(rid, str) else None, binary_default)


def _v2_tensor(t: dict, i: int, blob: bytes, offset: int) -> tuple[list, list[int], int]:
    where = f"inputs[{i}]" + (f" ({t['name']!r})" if isinstance(t.get("name"), str) else "")
    if not isinstance(t.get("name"), str):
        raise RequestError(400, f"{where}.name: expected a string")
    shape, dtype = t.get("shape"), t.get("datatype")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise RequestError(
            400, f"{where}.shape: expected a list of non-negative integers, got {shape!r}"
        )
    if not isinstance(dtype, str) or (dtype not in V2_DTYPES and dtype != "BYTES"):
        raise RequestError(
            400, f"{where}.datatype: {dtype!r} is not one of {', '.join([*V2_DTYPES, 'BYTES'])}"
        )
    count = int(np.prod(shape))
    params = t.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise RequestError(
                400, f"{where}.parameters.binary_data_size: {size!r} does not fit the binary data"
            )
        raw = blob[offset : offset + size]
        offset += size
        values = _v2_binary(raw, dtype, count, where)
    else:
        if "data" not in t:
            raise RequestError(400, f"{where}.data: missing (or give parameters.binary_data_size)")
        values = _flatten(t["data"], where)
        if dtype != "BYTES":
            bad = next(
                (
                    v
                    for v in values
                    if isinstance(v, (str, list, dict))
                    or (v is not None and dtype != "BOOL" and isinstance(v, bool))
                ),
                None,
            )
            if bad is not None:
                raise RequestError(
                    422, f"{where}.data: datatype {dtype} needs numbers, got {bad!r}"
                )
    if len(values) != count:
        raise RequestError(422, f"{where}: shape {shape} needs {count} values, got {len(values)}")
    return values, shape, offset


def _flatten(data: Any, where: str) -> list:
    if not isinstance(data, list):
        raise RequestError(400, f"{where}.data: expected a list, got {_kind(data)}")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []
    stack = [iter(data)]
    while stack:  # iterative: a deeply nested body must not hit the recursion limit
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _v2_binary(raw: bytes, dtype: str, count: int, where: str) -> list:
    if dtype == "BYTES":
        values, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise RequestError(400, f"{where}: truncated BYTES element")
            n = int.from_bytes(raw[pos : pos + 4], "little")
            values.append(raw[pos + 4 : pos + 4 + n].decode("utf-8", errors="replace"))
            pos += 4 + n
        return values
    np_dtype = np.dtype(V2_DTYPES[dtype]).newbyteorder("<")
    if len(raw) != count * np_dtype.itemsize:
        raise RequestError(
            422,
            f"{where}: {len(raw)} binary bytes, expected {count * np_dtype.itemsize} for {count} {dtype}",
        )
    return np.frombuffer(raw, dtype=np_dtype).astype(np.float64).tolist()


def _v2_rows(tensors: list[tuple[str, list, list[int]]], columns: list[str]) -> list:
    width = len(columns)
    if (
        len(tensors) == 1
        and len(tensors[0][2]) == 2
        and (tensors[0][0] not in columns or width == 1)
    ):
        name, values, shape = tensors[0]
        if shape[1] != width:
            raise RequestError(
                422,
                f"input {name!r}: shape {shape} has {shape[1]} columns, the model takes {width}",
            )
        return [values[r * width : (r + 1) * width] for r in range(shape[0])]
    names = [t[0] for t in tensors]
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise RequestError(
            422,
            f"unknown input(s) {', '.join(map(repr, unknown))}: send one input of shape "
            f"[N, {width}], or one input a column named after it ({', '.join(columns[:8])}"
            f"{', ...' if width > 8 else ''})",
        )
    missing = [c for c in columns if c not in names]
    if missing:
        raise RequestError(
            422, f"missing input(s) for column(s) {', '.join(map(repr, missing[:10]))}"
        )
    n = {len(t[1]) for t in tensors}
    if len(n) != 1 or any(len(t[2]) > 2 or (len(t[2]) == 2 and t[2][1] != 1) for t in tensors):
        raise RequestError(422, "column inputs must all have shape [N] (or [N, 1]) with the same N")
    by_name = {t[0]: t[1] for t in tensors}
    return [list(r) for r in zip(*(by_name[c] for c in columns))]


def v2_datatype(values: list) -> str:
    """The v2 datatype of a list of labels or values."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def v2_response(
    model: str, version: str, request_id: str | None, outputs: list[dict], binary: dict[str, bool]
) -> tuple[bytes, dict[str, str]]:
    """Encode a v2 response; outputs flagged in ``binary`` go after the JSON header as raw bytes."""
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": []}
    if request_id is not None:
        doc["id"] = request_id
    blobs = []
    for o in outputs:
        if binary.get(o["name"]):
            raw = _to_binary(o["data"], o["datatype"])
            blobs.append(raw)
            doc["outputs"].append(
                {k: v for k, v in o.items() if k != "data"}
                | {"parameters": {"binary_data_size": len(raw)}}
            )
        else:
            doc["outputs"].append(o)
    head = dumps(doc)
    if not blobs:
        return head, {}
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def _to_binary(data: list, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in data:
            b = str(v).encode()
            parts.append(len(b).to_bytes(4, "little") + b)
        return b"".join(parts)
    return np.asarray(data, dtype=np.dtype(V2_DTYPES[datatype]).newbyteorder("<")).tobytes()
