"""`automodel serve` over real HTTP: three protocols, the seed's body, every bad input, a Triton
client, schema fuzzing, Prometheus metrics, a live version update with auth, and a clean Ctrl-C.

One server (its own local Ray, HAProxy ingress) for the whole module; tests run in file order and
the last two change it (new version with a token, then stop).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from automodel.spec import Spec
from tests.serve.conftest import Load, Server, digits_rows, make_artifact

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SERVE = {"max_rows": 100, "max_body_bytes": 65536, "min_replicas": 1, "max_replicas": 1}
TOKEN_ENV = "AUTOMODEL_TEST_SERVE_TOKEN"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory, digits):
    """(server, artifact, dataset): a digits logistic model on `automodel serve`."""
    root = tmp_path_factory.mktemp("http")
    artifact, data = make_artifact(
        root / "v1" / "artifact",
        Spec(name="digits", serve=SERVE),
        "logistic",
        {"C": 1.0},
        dataset=digits,
    )
    # The token is in the server's environment from the start; v2 of the model turns auth on.
    server = Server(artifact.path, env={TOKEN_ENV: TOKEN})
    yield server, artifact, data
    server.kill()


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served[0].url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def offline(served):
    """What the offline model predicts for the test rows (labels and probabilities)."""
    from automodel.serve import Predictor

    _, artifact, data = served
    return Predictor(artifact.path).predict(digits_rows(data), probabilities=True)


def test_server_says_where_it_listens(served):
    server = served[0]
    text = "\n".join(server.lines)
    assert f"serving digits version 1 at {server.url}" in text
    assert "ingress: haproxy" in text


def test_seed_flask_body_gets_offline_predictions(served, client, offline):
    """The seed's client: POST /predict {"features": [[...]]} (requests.post(url, json=...))."""
    _, _, data = served
    rows = digits_rows(data, 40)
    r = client.post("/predict", json={"features": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] == offline[0][:40]
    assert body["model"] == "digits" and body["version"] == "1"
    # the seed's exact one-row body, sent as raw JSON text
    seed = '{"features": [' + json.dumps(rows[0]) + "]}"
    r = client.post("/predict", content=seed, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["predictions"] == offline[0][:1]


def test_instances_as_lists_and_records_with_probabilities(served, client, offline):
    _, artifact, data = served
    rows = digits_rows(data, 10)
    cols = artifact.preprocessor.input_columns
    records = [dict(zip(cols, r)) for r in rows]
    for instances in (rows, records):
        r = client.post("/predict", json={"instances": instances, "probabilities": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["predictions"] == offline[0][:10]
        np.testing.assert_allclose(body["probabilities"], offline[1][:10], rtol=1e-5, atol=1e-6)
        assert body["classes"] == list(range(10))
    # null is a missing value: imputed as the preprocessor says, same as offline
    holes = [list(rows[0])]
    holes[0][5] = None
    from automodel.serve import Predictor

    expected = Predictor(artifact.path).predict(holes)[0]
    assert client.post("/predict", json={"features": holes}).json()["predictions"] == expected


def test_kserve_v1(served, client, offline):
    _, _, data = served
    r = client.post("/v1/models/digits:predict", json={"instances": digits_rows(data, 25)})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == offline[0][:25]
    assert client.get("/v1/models/digits").json() == {"name": "digits", "ready": True}


def test_open_inference_protocol_v2_json(served, client, offline):
    _, _, data = served
    rows = digits_rows(data, 7)
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1/ready",
    ):
        assert client.get(path).status_code == 200, path
    meta = client.get("/v2/models/digits").json()
    assert meta["versions"] == ["1"] and meta["inputs"][0]["shape"] == [-1, 64]
    req = {
        "id": "abc",
        "inputs": [
            {
                "name": "input",
                "shape": [7, 64],
                "datatype": "FP32",
                "data": [v for r in rows for v in r],
            }
        ],
    }
    body = client.post("/v2/models/digits/infer", json=req).json()
    assert body["model_name"] == "digits" and body["model_version"] == "1" and body["id"] == "abc"
    out = {o["name"]: o for o in body["outputs"]}
    assert (
        out["predictions"]["data"] == offline[0][:7] and out["predictions"]["datatype"] == "INT64"
    )
    assert out["probabilities"]["shape"] == [7, 10]
    np.testing.assert_allclose(
        np.reshape(out["probabilities"]["data"], (7, 10)), offline[1][:7], rtol=1e-5, atol=1e-6
    )
    # only the outputs asked for
    req["outputs"] = [{"name": "predictions"}]
    body = client.post("/v2/models/digits/infer", json=req).json()
    assert [o["name"] for o in body["outputs"]] == ["predictions"]


def test_triton_client_gets_correct_outputs(served, offline):
    """tritonclient[http], unchanged: binary tensors in and out (its defaults), and JSON."""
    tritonclient = pytest.importorskip("tritonclient.http")
    server, _, data = served
    rows = np.asarray(digits_rows(data, 16), dtype=np.float32)
    c = tritonclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("digits")
    assert c.get_model_metadata("digits")["name"] == "digits"
    for binary in (True, False):
        inp = tritonclient.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows, binary_data=binary)
        outs = [
            tritonclient.InferRequestedOutput("predictions", binary_data=binary),
            tritonclient.InferRequestedOutput("probabilities", binary_data=binary),
        ]
        result = c.infer("digits", [inp], outputs=outs)
        assert result.as_numpy("predictions").tolist() == offline[0][:16]
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), offline[1][:16], rtol=1e-5, atol=1e-6
        )
    c.close()


def _bad_inputs(rows):
    row = rows[0]
    rec = {f"pixel_{i // 8}_{i % 8}": v for i, v in enumerate(row)}
    v2 = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row}]}
    return [
        # (id, method, path, body bytes or JSON, headers, status, message fragment)
        ("malformed-json", "POST", "/predict", b'{"features": [[1, 2', {}, 400, "malformed JSON"),
        ("not-an-object", "POST", "/predict", [row], {}, 400, "expected a JSON object"),
        ("empty-body", "POST", "/predict", b"", {}, 400, "empty request body"),
        ("missing-key", "POST", "/predict", {"rows": [row]}, {}, 400, "missing key"),
        (
            "both-keys",
            "POST",
            "/predict",
            {"features": [row], "instances": [row]},
            {},
            400,
            "not both",
        ),
        (
            "unknown-key",
            "POST",
            "/predict",
            {"features": [row], "extra": 1},
            {},
            400,
            "unknown key",
        ),
        (
            "features-not-list",
            "POST",
            "/predict",
            {"features": {"a": 1}},
            {},
            400,
            "expected a list of rows",
        ),
        ("empty-batch", "POST", "/predict", {"features": []}, {}, 400, "empty batch"),
        (
            "flat-row",
            "POST",
            "/predict",
            {"features": row},
            {},
            422,
            "row 0: expected a list of 64 values",
        ),
        (
            "too-narrow",
            "POST",
            "/predict",
            {"features": [row[:3]]},
            {},
            422,
            "expected 64 values, got 3",
        ),
        (
            "too-wide",
            "POST",
            "/predict",
            {"features": [row + [1]]},
            {},
            422,
            "expected 64 values, got 65",
        ),
        (
            "string-value",
            "POST",
            "/predict",
            {"features": [["x"] + row[1:]]},
            {},
            422,
            "'pixel_0_0': expected a number",
        ),
        (
            "nested-value",
            "POST",
            "/predict",
            {"features": [[[1]] + row[1:]]},
            {},
            422,
            "expected a number",
        ),
        (
            "nan",
            "POST",
            "/predict",
            b'{"features": [[NaN' + b", 0" * 63 + b"]]}",
            {},
            422,
            "non-finite number NaN",
        ),
        (
            "infinity",
            "POST",
            "/predict",
            b'{"features": [[-Infinity' + b", 0" * 63 + b"]]}",
            {},
            422,
            "non-finite number -Infinity",
        ),
        (
            "overflow",
            "POST",
            "/predict",
            b'{"features": [[1e400' + b", 0" * 63 + b"]]}",
            {},
            422,
            "non-finite",
        ),
        (
            "out-of-range",
            "POST",
            "/predict",
            {"features": [[1e300] + row[1:]]},
            {},
            422,
            "not finite",
        ),
        (
            "record-missing",
            "POST",
            "/predict",
            {"instances": [{k: v for k, v in rec.items() if k != "pixel_3_3"}]},
            {},
            422,
            "missing column(s): pixel_3_3",
        ),
        (
            "record-unknown",
            "POST",
            "/predict",
            {"instances": [{**rec, "colour": 1}]},
            {},
            422,
            "unknown column(s): colour",
        ),
        (
            "probabilities-not-bool",
            "POST",
            "/predict",
            {"features": [row], "probabilities": "yes"},
            {},
            400,
            "probabilities: expected true or false",
        ),
        (
            "too-many-rows",
            "POST",
            "/predict",
            {"features": [row] * 101},
            {},
            413,
            "too many rows: 101",
        ),
        (
            "body-too-large",
            "POST",
            "/predict",
            b'{"features": [' + b"0," * 40000 + b"0]}",
            {},
            413,
            "over the limit of 65536",
        ),
        (
            "v1-unknown-model",
            "POST",
            "/v1/models/nope:predict",
            {"instances": [row]},
            {},
            404,
            "model 'nope' not found",
        ),
        (
            "v1-missing-key",
            "POST",
            "/v1/models/digits:predict",
            {"features": [row]},
            {},
            400,
            "'instances' or 'inputs'",
        ),
        (
            "v2-unknown-model",
            "POST",
            "/v2/models/nope/infer",
            v2,
            {},
            404,
            "model 'nope' not found",
        ),
        (
            "v2-unknown-version",
            "POST",
            "/v2/models/digits/versions/9/infer",
            v2,
            {},
            404,
            "serving version '1'",
        ),
        (
            "v2-no-inputs",
            "POST",
            "/v2/models/digits/infer",
            {"inputs": []},
            {},
            400,
            "inputs: expected a non-empty list",
        ),
        (
            "v2-bad-datatype",
            "POST",
            "/v2/models/digits/infer",
            {"inputs": [{**v2["inputs"][0], "datatype": "FP99"}]},
            {},
            400,
            "'FP99' is not one of",
        ),
        (
            "v2-shape-mismatch",
            "POST",
            "/v2/models/digits/infer",
            {"inputs": [{**v2["inputs"][0], "shape": [2, 64]}]},
            {},
            422,
            "needs 128 values, got 64",
        ),
        (
            "v2-wrong-width",
            "POST",
            "/v2/models/digits/infer",
            {"inputs": [{**v2["inputs"][0], "shape": [2, 32]}]},
            {},
            422,
            "the model takes 64",
        ),
        (
            "v2-string-in-fp32",
            "POST",
            "/v2/models/digits/infer",
            {"inputs": [{**v2["inputs"][0], "data": ["a"] * 64}]},
            {},
            422,
            "needs numbers",
        ),
        (
            "v2-unknown-output",
            "POST",
            "/v2/models/digits/infer",
            {**v2, "outputs": [{"name": "logits"}]},
            {},
            400,
            "unknown output(s) 'logits'",
        ),
        (
            "v2-bad-binary-header",
            "POST",
            "/v2/models/digits/infer",
            v2,
            {"inference-header-content-length": "99999"},
            400,
            "does not fit",
        ),
        ("wrong-method", "GET", "/predict", None, {}, 405, "use POST"),
        (
            "unknown-route",
            "POST",
            "/predictions",
            {"features": [row]},
            {},
            404,
            "no route POST /predictions",
        ),
    ]


def test_bad_inputs_get_4xx_naming_the_problem_and_server_keeps_answering(served, client, offline):
    _, _, data = served
    rows = digits_rows(data, 1)
    failures = []
    for case_id, method, path, body, headers, status, fragment in _bad_inputs(rows):
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        r = client.request(
            method, path, content=content, headers={"content-type": "application/json", **headers}
        )
        message = (
            r.json().get("error", "")
            if r.headers.get("content-type", "").startswith("application/json")
            else r.text
        )
        if r.status_code != status or fragment not in message:
            failures.append(
                f"{case_id}: {r.status_code} {message!r}, expected {status} with {fragment!r}"
            )
        assert (
            client.post("/predict", json={"features": rows}).json()["predictions"] == offline[0][:1]
        ), case_id
    assert not failures, "\n".join(failures)


def test_chunked_body_over_the_limit_is_413(served, client):
    def chunks():
        for _ in range(20):
            yield b" " * 4096  # 80 KiB of whitespace, no Content-Length

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_openapi_published(served, client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/predict",
        "/v1/models/digits:predict",
        "/v2/models/digits/infer",
        "/v2/health/ready",
    } <= set(doc["paths"])
    as_lists, as_records = doc["components"]["schemas"]["Rows"]["oneOf"]
    assert as_lists["items"]["minItems"] == as_lists["items"]["maxItems"] == 64
    assert len(as_records["items"]["required"]) == 64


def test_schemathesis_fuzzing_finds_no_server_error(served, tmp_path):
    """Fuzz every operation of the published schema: no input may produce a 5xx."""
    pytest.importorskip("schemathesis")
    exe = shutil.which("schemathesis") or shutil.which("st")
    if exe is None:
        pytest.skip("schemathesis CLI not on PATH")
    server = served[0]
    proc = subprocess.run(
        [
            exe,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    report = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) >= 200, report


def test_prometheus_metrics_count_requests_latency_and_batches(served, client):
    server, _, data = served
    body = json.dumps({"features": digits_rows(data, 1)}).encode()
    load = Load(f"{server.url}/predict", body, conns=8)  # concurrency: requests share batches
    time.sleep(4)
    results = load.stop()
    assert results and all(status == 200 for _, status, _ in results)
    deadline, text = time.time() + 30, ""
    wanted = (
        "ray_serve_deployment_request_counter",
        "ray_serve_deployment_processing_latency_ms",
        "ray_serve_actual_batch_size",
        "automodel_serve_requests",  # answers by model version
    )

    def served_count(text: str) -> float:
        line = next(
            (
                m
                for m in text.splitlines()
                if m.startswith("ray_serve_deployment_request_counter")
                and 'deployment="Model"' in m
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    # Ray exports its counters every few seconds: wait until they have caught up with the load
    while time.time() < deadline:
        text = httpx.get(server.metrics_url, timeout=10).text
        if all(w in text for w in wanted) and served_count(text) >= len(results):
            break
        time.sleep(1)
    missing = [w for w in wanted if w not in text]
    assert not missing, (
        f"missing metrics {missing}; have: {sorted({m.split('{')[0] for m in text.splitlines() if m.startswith('ray_serve')})}"
    )
    assert served_count(text) >= len(results)
    by_version = [
        m
        for m in text.splitlines()
        if "automodel_serve_requests" in m and 'status="2xx"' in m and not m.startswith("#")
    ]
    version = httpx.get(f"{server.url}/", timeout=10).json()["version"]
    assert any(f'version="{version}"' in m for m in by_version), by_version


def test_new_version_replaces_the_old_without_dropping_requests(served, tmp_path, digits):
    """jobs/deploy.py with v2 (auth on) under load: no failed request, then only v2 answers."""
    server, _, data = served
    artifact2, _ = make_artifact(
        tmp_path / "v2" / "artifact",
        Spec(name="digits", serve={**SERVE, "auth_token_env": TOKEN_ENV}),
        "logistic",
        {"C": 0.5},
        dataset=digits,
        version=2,
    )
    body = json.dumps({"features": digits_rows(data, 1)}).encode()
    load = Load(
        f"{server.url}/predict", body, conns=4, headers={"authorization": f"Bearer {TOKEN}"}
    )
    env = {"RAY_ADDRESS": server.ray_address}
    import os

    proc = subprocess.run(
        [sys.executable, "jobs/deploy.py", "--artifact", str(artifact2.path)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **env},
    )
    time.sleep(1)
    results = load.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "digits is running version 2" in proc.stdout
    statuses = [s for _, s, _ in results]
    versions = [v for _, s, v in results if s == 200]
    assert len(results) > 20 and set(statuses) == {200}, (
        f"failed requests during the update: {[r for r in results if r[1] != 200][:5]}"
    )
    assert versions[0] == "1" and versions[-1] == "2"
    # v2 has a bearer token: without it 401, with a wrong one 401, health probes stay open
    c = httpx.Client(base_url=server.url, timeout=10)
    r = c.post("/predict", json={"features": digits_rows(data, 1)})
    assert r.status_code == 401 and "missing bearer token" in r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = c.post(
        "/predict",
        json={"features": digits_rows(data, 1)},
        headers={"authorization": "Bearer wrong"},
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid bearer token"
    assert c.get("/v2/health/ready").status_code == 200
    r = c.post(
        "/predict",
        json={"features": digits_rows(data, 1)},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 200 and r.json()["version"] == "2"


def test_ctrl_c_stops_the_server_and_every_process_it_started(served):
    from automodel.serve._launch import _alive, _descendants

    server = served[0]
    ours = _descendants(server.proc.pid)
    assert server.replicas() and ours
    start = time.time()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(90) == 0
    took = time.time() - start
    time.sleep(1)
    left = [p for p in ours if _alive(p)]
    assert not left, f"processes left after Ctrl-C: {left}"
    assert took < 60
    assert "stopping..." in server.lines
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/v2/health/live", timeout=3)
