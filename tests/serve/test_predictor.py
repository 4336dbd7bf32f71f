"""Predictor and request handler without a server: the numeric fast path equals the preprocessor,
categorical tables take the pandas path, and the wire formats round-trip (v2 binary included)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from automodel.errors import DataError
from automodel.serve import ModelServer, Predictor
from automodel.serve._protocol import RequestError, parse_json, parse_v2_request, v2_response
from tests.serve.conftest import digits_rows


@pytest.fixture(scope="module")
def digits_predictor(digits_artifact):
    return Predictor(digits_artifact[0])


def handle(server, method, path, body=None, headers=None):
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return asyncio.run(server.handle(method, path, headers or {}, raw))


def test_fast_path_equals_the_preprocessor(digits_artifact, digits_predictor):
    artifact, data = digits_artifact
    rows = digits_rows(data, 100)
    assert digits_predictor._fast is not None
    expected = artifact.preprocessor.transform(rows)
    np.testing.assert_array_equal(digits_predictor.encode(rows), expected)
    np.testing.assert_array_equal(digits_predictor.encode(rows, strict=True), expected)
    np.testing.assert_array_equal(digits_predictor.encode(rows), data.X_test[:100])
    records = [dict(zip(artifact.preprocessor.input_columns, r)) for r in rows[:5]]
    np.testing.assert_array_equal(digits_predictor.encode(records), expected[:5])
    holes = [list(r) for r in rows[:3]]
    holes[1][10] = None  # missing: imputed with the column's fill value, like the preprocessor
    np.testing.assert_array_equal(
        digits_predictor.encode(holes), artifact.preprocessor.transform(holes)
    )


def test_predictions_match_the_offline_model(digits_artifact, digits_predictor):
    _, data = digits_artifact
    preds, proba = digits_predictor.predict(digits_rows(data), probabilities=True)
    offline = digits_predictor.run(data.X_test)
    assert preds == offline.argmax(axis=1).tolist()
    np.testing.assert_allclose(proba, offline, rtol=1e-6)
    assert np.mean(np.asarray(preds) == data.y_test) > 0.9


def test_strict_mode_refuses_strings_the_preprocessor_would_coerce(
    digits_artifact, digits_predictor
):
    _, data = digits_artifact
    row = digits_rows(data, 1)[0]
    coerced = [["1.5"] + row[1:]]
    digits_predictor.encode(coerced)  # offline: "1.5" is 1.5
    with pytest.raises(DataError, match=r"row 0: column 'pixel_0_0': expected a number, got '1.5'"):
        digits_predictor.encode(coerced, strict=True)


def test_categorical_table_unknown_category_and_missing_values(mixed_artifact):
    artifact, data = mixed_artifact
    p = Predictor(artifact.path)
    assert p._fast is None  # categorical columns: the pandas path
    raw = data.raw_test.drop(columns=[data.preprocessor.target])
    rows = raw.astype(object).where(raw.notna(), None).to_numpy().tolist()
    np.testing.assert_allclose(p.encode(rows), data.X_test, rtol=1e-6)
    preds, _ = p.predict(rows)
    assert preds == [data.classes[i] for i in p.run(data.X_test).argmax(axis=1)]
    # an unknown city encodes as no city at all (all-zero one-hot), as the preprocessor says
    known, unknown = dict(zip(p.input_columns, rows[0])), dict(zip(p.input_columns, rows[0]))
    unknown["city"] = "atlantis"
    enc = p.encode([known, unknown])
    city = [i for i, n in enumerate(artifact.preprocessor.feature_names) if n.startswith("city=")]
    assert enc[1, city].sum() == 0 and enc[0, city].sum() == 1
    server = ModelServer(p)
    r = handle(server, "POST", "/predict", {"instances": [unknown]})
    assert r.status == 200 and json.loads(r.body)["predictions"][0] in ("no", "yes")
    r = handle(server, "POST", "/predict", {"instances": [{**unknown, "age": "old"}]})
    assert r.status == 422 and b"'age': expected a number" in r.body
    meta = json.loads(handle(server, "GET", "/v2/models/churn").body)
    assert meta["inputs"][0]["datatype"] == "BYTES"


def test_v2_columns_as_separate_inputs(mixed_artifact):
    artifact, data = mixed_artifact
    p = Predictor(artifact.path)
    cols = p.input_columns
    rows = [["30", "paris", "pro", "55.5"], ["61", "nice", "basic", "40"]]
    inputs = [
        {"name": c, "shape": [2], "datatype": "BYTES", "data": [r[i] for r in rows]}
        for i, c in enumerate(cols)
    ]
    req = parse_v2_request(json.dumps({"inputs": inputs}).encode(), None, cols)
    assert req.rows == rows
    out = json.loads(
        handle(ModelServer(p), "POST", "/v2/models/churn/infer", {"inputs": inputs}).body
    )
    labels = {o["name"]: o for o in out["outputs"]}["predictions"]
    assert (
        labels["datatype"] == "BYTES"
        and labels["data"] == p.predict([[30, "paris", "pro", 55.5], [61, "nice", "basic", 40]])[0]
    )


def test_v2_binary_tensors_round_trip(digits_artifact, digits_predictor):
    _, data = digits_artifact
    X = np.asarray(digits_rows(data, 3), dtype=np.float32)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [3, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": X.nbytes},
                }
            ],
            "outputs": [
                {"name": "probabilities", "parameters": {"binary_data": True}},
                {"name": "predictions"},
            ],
        }
    ).encode()
    server = ModelServer(digits_predictor)
    r = handle(
        server,
        "POST",
        "/v2/models/digits/infer",
        head + X.tobytes(),
        {"inference-header-content-length": str(len(head))},
    )
    assert r.status == 200, r.body
    n = int(r.headers["Inference-Header-Content-Length"])
    doc = json.loads(r.body[:n])
    proba = np.frombuffer(r.body[n:], dtype="<f4").reshape(3, 10)
    np.testing.assert_allclose(
        proba, digits_predictor.predict(X.tolist(), probabilities=True)[1], rtol=1e-6
    )
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["probabilities"]["parameters"]["binary_data_size"] == 3 * 10 * 4
    assert outputs["predictions"]["data"] == digits_predictor.predict(X.tolist())[0]
    # the response encoder, BYTES included
    body, headers = v2_response(
        "m",
        "1",
        None,
        [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["a", "bc"]}],
        {"s": True},
    )
    assert body.endswith(b"\x01\x00\x00\x00a\x02\x00\x00\x00bc")


def test_json_parsing_errors_name_the_problem():
    with pytest.raises(RequestError, match="malformed JSON") as e:
        parse_json(b'{"features": [1,')
    assert e.value.status == 400
    with pytest.raises(RequestError, match="non-finite number Infinity") as e:
        parse_json(b'{"features": [[Infinity]]}')
    assert e.value.status == 422
    assert parse_json(b"[123456789012345678901234567890]")[0] == pytest.approx(
        1.2345678901234568e29
    )


def test_deeply_nested_bodies_are_4xx(digits_predictor):
    server = ModelServer(digits_predictor)
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, body in [
        ("/predict", b'{"features": [' + deep + b"]}"),
        (
            "/v2/models/digits/infer",
            b'{"inputs": [{"name": "input", "shape": [1, 64], '
            b'"datatype": "FP32", "data": ' + deep + b"}]}",
        ),
    ]:
        assert 400 <= handle(server, "POST", path, body).status < 500, path


def test_auth_routes_and_self_test(digits_artifact):
    p = Predictor(digits_artifact[0])
    assert p.self_test().shape == (1, 10)
    server = ModelServer(p, token="t0k")
    assert handle(server, "POST", "/predict", {"features": [[0] * 64]}).status == 401
    assert (
        handle(
            server, "POST", "/predict", {"features": [[0] * 64]}, {"authorization": "Bearer t0k"}
        ).status
        == 200
    )
    assert handle(server, "GET", "/v2/health/ready").status == 200
    assert (
        handle(server, "GET", "/v2/models/digits", headers={"authorization": "Basic t0k"}).status
        == 401
    )
    doc = json.loads(handle(server, "GET", "/openapi.json").body)
    assert doc["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]
    assert "401" in doc["paths"]["/predict"]["post"]["responses"]


def test_replica_self_test_guards_traffic(digits_artifact, mixed_artifact, tmp_path):
    """The Serve replica's reconfigure/check_health, run in-process (no Serve needed)."""
    import shutil

    from automodel.serve._settings import serve_settings, user_config
    from serve_apps.model import ModelDeployment
    from tests.serve.conftest import rehash_card

    artifact, _ = digits_artifact
    replica = ModelDeployment.func_or_class()
    replica.reconfigure(user_config(artifact.path, serve_settings(artifact), "digits"))
    assert replica.server.version == "1"
    replica.check_health()
    replica._probe = replica._probe + 0.5  # the model now answers the probe differently
    with pytest.raises(RuntimeError, match="changed"):
        replica.check_health()
    # a model that cannot answer its own inputs never takes traffic: reconfigure refuses it
    broken = tmp_path / "broken"
    shutil.copytree(artifact.path, broken)
    shutil.copy(mixed_artifact[0].path / "model.onnx", broken / "model.onnx")
    rehash_card(broken)
    fresh = ModelDeployment.func_or_class()
    with pytest.raises(Exception, match="(?i)invalid|dimension|shape"):
        fresh.reconfigure(user_config(broken, serve_settings(artifact), "digits"))
    assert fresh.server is None
