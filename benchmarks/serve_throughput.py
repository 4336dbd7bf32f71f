"""Serving throughput: the seed's Flask service vs a bare uvicorn app vs `automodel serve`.

Same artifact (a digits MLP exported to ONNX), same preprocessing, same ONNX Runtime settings
(one intra-op thread) in all three; only the serving layer differs:

* flask     - the seed's deployment step: Flask's built-in server, ``request.get_json()``, numpy
              scaling, ``session.run`` per request, ``jsonify`` (threaded, as ``app.run`` defaults).
* uvicorn   - a hand-written FastAPI app (pydantic body, ``async def``) on one uvicorn worker.
* automodel - ``automodel serve ARTIFACT --replicas 1``: Ray Serve, HAProxy ingress, batching;
              automodel-2 the same with ``--replicas 2`` (one CPU each: the machine's two cores).

Load: wrk on 127.0.0.1 (``-c1`` and ``-c16``; 1-row and 32-row bodies), or, without wrk, a bounded
asyncio/httpx client. Every server's answers are checked equal before it is timed.

    python benchmarks/serve_throughput.py [--duration 10] [--repeats 2] [--artifact DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import table, write_section  # noqa: E402


# ---- the two baselines (run in their own process: `--run flask|uvicorn`) -------------------------
def _plain_model(artifact: str):
    """What a hand-written service loads: the ONNX session and the scaling numbers."""
    import onnxruntime as ort

    prep = json.loads((Path(artifact) / "preprocess.json").read_text())
    card = json.loads((Path(artifact) / "card.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(Path(artifact) / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    cols = prep["columns"]
    fill = np.array([c["fill"] for c in cols])
    mean = np.array([c["mean"] for c in cols])
    std = np.array([c["std"] for c in cols])
    return sess, card["onnx"]["output"], fill, mean, std, card["classes"]


def run_flask(artifact: str, port: int) -> None:
    from flask import Flask, jsonify, request

    sess, output, fill, mean, std, classes = _plain_model(artifact)
    app = Flask(__name__)

    @app.route("/predict", methods=["POST"])
    def predict():
        data = request.get_json()
        X = np.asarray(data["features"], dtype=np.float64)
        X = ((np.where(np.isnan(X), fill, X) - mean) / std).astype(np.float32)
        prediction = sess.run([output], {"input": X})[0].argmax(axis=1)
        return jsonify({"predictions": [classes[i] for i in prediction]})

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=port, threaded=True)


class Body(BaseModel):
    features: list[list[float]]


def run_uvicorn(artifact: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    sess, output, fill, mean, std, classes = _plain_model(artifact)
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: Body):
        X = np.asarray(body.features, dtype=np.float64)
        X = ((np.where(np.isnan(X), fill, X) - mean) / std).astype(np.float32)
        prediction = sess.run([output], {"input": X})[0].argmax(axis=1)
        return {"predictions": [classes[i] for i in prediction]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- harness ---------------------------------------------------------------------------------------
def make_artifact(root: Path) -> Path:
    """A digits MLP artifact, as `automodel train` writes it (fitted in-process: seconds)."""
    from automodel.data import load_dataset
    from automodel.models import get_family
    from automodel.pipeline import build_artifact
    from automodel.spec import Spec
    from automodel.train import TrainedModel

    spec = Spec(name="digits")
    data = load_dataset(spec.data)
    model = get_family("mlp")(
        data.task, data.n_features, data.n_outputs, {"hidden": 128, "layers": 2}, max_steps=15
    ).fit(data.X_train, data.y_train)
    trained = TrainedModel(
        model,
        "mlp",
        model.params,
        {"workers": 1, "use_gpu": False, "epochs": 15, "restarts": 0, "wall_s": 0.0},
    )
    return build_artifact(spec, data, trained, root / "artifact").path


def bodies() -> dict[int, bytes]:
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    data = load_dataset(DataSpec())
    rows = data.raw_test.drop(columns=[data.preprocessor.target]).to_numpy().tolist()
    return {n: json.dumps({"features": rows[:n]}).encode() for n in (1, 32)}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, artifact: Path, port: int) -> subprocess.Popen:
    if kind.startswith("automodel"):
        replicas = "2" if kind == "automodel-2" else "1"
        cmd = [
            sys.executable,
            "-m",
            "automodel.cli",
            "serve",
            str(artifact),
            "--port",
            str(port),
            "--replicas",
            replicas,
        ]
    else:
        cmd = [
            sys.executable,
            __file__,
            "--run",
            kind,
            "--artifact",
            str(artifact),
            "--port",
            str(port),
        ]
    log = open(Path(tempfile.gettempdir()) / f"bench-{kind}-{port}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_answer(port: int, body: bytes, timeout: float = 180) -> list:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            r = httpx.post(
                f"http://127.0.0.1:{port}/predict",
                content=body,
                headers={"content-type": "application/json"},
                timeout=5,
            )
            if r.status_code == 200:
                return r.json()["predictions"]
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not answer within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}", "rb"):read("*a")
"""


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def load_wrk(port: int, body: bytes, conns: int, duration: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body.json").write_bytes(body)
        (Path(tmp) / "post.lua").write_text(LUA.format(body=Path(tmp) / "body.json"))
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(2, conns)}",
                f"-c{conns}",
                f"-d{int(duration)}s",
                "--latency",
                "-s",
                str(Path(tmp) / "post.lua"),
                f"http://127.0.0.1:{port}/predict",
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        )
    out = out.stdout + out.stderr
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {out[-500:]}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    bad += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": rps, "p50": p50, "p99": p99, "errors": bad, "requests": total}


def load_httpx(port: int, body: bytes, conns: int, duration: float) -> dict:
    """Closed-loop client: ``conns`` connections, each sends its next request on the last reply."""
    import asyncio

    import httpx

    async def main():
        lat, errors = [], 0
        limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            end = time.perf_counter() + duration

            async def worker():
                nonlocal errors
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    r = await client.post(
                        f"http://127.0.0.1:{port}/predict",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    lat.append(time.perf_counter() - t)
                    errors += r.status_code != 200

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            wall = time.perf_counter() - t0
        lat.sort()
        return {
            "rps": len(lat) / wall,
            "p50": lat[len(lat) // 2] * 1000,
            "p99": lat[int(len(lat) * 0.99)] * 1000,
            "errors": errors,
            "requests": len(lat),
        }

    return asyncio.run(main())


def bench(duration: float, repeats: int, artifact: Path | None, kinds: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    artifact = artifact or make_artifact(tmp)
    payloads = bodies()
    load = load_wrk if shutil.which("wrk") else load_httpx
    tool = "wrk" if load is load_wrk else "asyncio/httpx closed loop"
    results: dict[tuple[str, int, int], dict] = {}
    reference = None
    load_before = os.getloadavg()[0]
    # All servers up at once and measured in interleaved rounds: on a shared machine each one
    # sees the same mix of background load (best of ``repeats`` rounds is kept).
    servers = {kind: (free_port(),) for kind in kinds}
    procs = {kind: start(kind, artifact, servers[kind][0]) for kind in kinds}
    try:
        for kind in kinds:
            answer = wait_answer(servers[kind][0], payloads[32])
            reference = reference or answer
            if answer != reference:
                raise RuntimeError(f"{kind} answers {answer[:5]}..., expected {reference[:5]}...")
        for conns in (1, 16):
            for rows in (1, 32):
                runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
                for kind in kinds:
                    load(servers[kind][0], payloads[rows], conns, 2)  # warm-up
                for _ in range(repeats):
                    for kind in kinds:
                        runs[kind].append(load(servers[kind][0], payloads[rows], conns, duration))
                for kind in kinds:
                    best = max(runs[kind], key=lambda r: r["rps"])  # least disturbed round
                    best["spread"] = (best["rps"] - min(r["rps"] for r in runs[kind])) / best["rps"]
                    results[(kind, conns, rows)] = best
                    print(
                        f"{kind:11s} c={conns:2d} rows={rows:2d}  {best['rps']:8.0f} req/s  p50 {best['p50']:6.2f} ms  "
                        f"p99 {best['p99']:6.2f} ms  errors {best['errors']}  spread {best['spread']:.0%}",
                        flush=True,
                    )
    finally:
        for proc in procs.values():
            stop(proc)
    report(results, kinds, duration, repeats, tool, (load_before, os.getloadavg()[0]))


def report(
    results: dict,
    kinds: list[str],
    duration: float,
    repeats: int,
    tool: str,
    loads: tuple[float, float],
) -> None:
    rows = []
    for conns in (1, 16):
        for n in (1, 32):
            flask, bare = results.get(("flask", conns, n)), results.get(("uvicorn", conns, n))
            for kind in kinds:
                r = results[(kind, conns, n)]
                vs_flask = f"{r['rps'] / flask['rps']:.2f}x" if flask else ""
                vs_bare = f"{r['rps'] / bare['rps']:.2f}x" if bare else ""
                p99_ratio = f"{r['p99'] / flask['p99']:.2f}" if flask else ""
                rows.append(
                    [
                        conns,
                        n,
                        kind,
                        round(r["rps"]),
                        r["p50"],
                        r["p99"],
                        r["errors"],
                        vs_flask,
                        p99_ratio,
                        vs_bare,
                    ]
                )
    body = table(
        [
            "conns",
            "rows/req",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "req/s vs flask",
            "p99 / flask p99",
            "req/s vs uvicorn",
        ],
        rows,
    )
    notes = (
        f"Load: {tool} on 127.0.0.1, {duration:.0f} s a run, best of {repeats} interleaved rounds "
        "(all servers up at once, each round visits every server) after a 2 s warm-up; the load "
        "generator shares the machine's 2 cores with the servers. Model: digits MLP "
        "(64 → 128 → 128 → 10) as ONNX, one ONNX Runtime thread everywhere. flask = the seed's "
        "deployment step (Flask dev server, threaded); uvicorn = FastAPI + pydantic on one uvicorn "
        "worker; automodel = `automodel serve --replicas 1` (Ray Serve 2.60, HAProxy ingress, "
        "Starlette handler, dynamic batching), automodel-2 = `--replicas 2`. "
        "Script: `python benchmarks/serve_throughput.py`. "
        f"Load average (1 min) before / after: {loads[0]:.1f} / {loads[1]:.1f}"
        f"{' - the machine was shared with other work' if max(loads) > 2.5 else ''}."
    )
    print(body)
    if {"flask", "uvicorn", "automodel"} <= set(kinds):
        write_section(
            "serve",
            "Serving: Flask (seed) vs bare uvicorn vs automodel serve",
            notes + "\n\n" + body,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", choices=["flask", "uvicorn"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--artifact", help="artifact to serve (default: a digits MLP fitted now)")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--servers", default="flask,uvicorn,automodel,automodel-2")
    args = p.parse_args()
    if args.run == "flask":
        return run_flask(args.artifact, args.port)
    if args.run == "uvicorn":
        return run_uvicorn(args.artifact, args.port)
    bench(
        args.duration,
        args.repeats,
        Path(args.artifact) if args.artifact else None,
        args.servers.split(","),
    )


if __name__ == "__main__":
    main()
