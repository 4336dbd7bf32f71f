"""Artifacts for serving tests, made in-process in seconds (no Tune, no Ray Train)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automodel.data import load_dataset
from automodel.models import get_family
from automodel.pipeline import build_artifact
from automodel.spec import Spec
from automodel.train import TrainedModel


def make_artifact(
    path: Path,
    spec: Spec,
    family: str = "logistic",
    params: dict | None = None,
    dataset=None,
    version: int | None = None,
):
    """Fit ``family`` on ``spec.data`` in-process and write ``path`` as the pipeline would."""
    data = dataset or load_dataset(spec.data)
    cls = get_family(family)
    model = cls(
        data.task,
        data.n_features,
        data.n_outputs,
        params,
        image_shape=data.preprocessor.image_shape,
        max_steps=5,
    ).fit(data.X_train, data.y_train)
    trained = TrainedModel(
        model,
        family,
        model.params,
        {"workers": 1, "use_gpu": False, "epochs": 0, "restarts": 0, "wall_s": 0.0},
    )
    artifact = build_artifact(spec, data, trained, path)
    if version is not None:  # a second version of the same model, as a re-run would write it
        import json

        card = json.loads((path / "card.json").read_text())
        card["version"] = version
        (path / "card.json").write_text(json.dumps(card))
        from automodel.artifact import read_artifact

        artifact = read_artifact(path)
    return artifact, data


def rehash_card(path: Path, version: int | None = None) -> None:
    """After a test edits an artifact's files on purpose: card.json's hashes (and version) to
    match, so the edit reaches the code under test instead of the reader's integrity check."""
    import hashlib
    import json

    card = json.loads((path / "card.json").read_text())
    for name, entry in (card.get("files") or {}).items():
        data = (path / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    if version is not None:
        card["version"] = version
    (path / "card.json").write_text(json.dumps(card))


def altered(src: Path, dst: Path, version: int, change) -> Path:
    """A copy of artifact ``src`` whose ONNX graph ``change`` edits, as version ``version``."""
    import onnx
    from onnx import helper, numpy_helper

    shutil.copytree(src, dst)
    card = json.loads((dst / "card.json").read_text())
    model = onnx.load(dst / "model.onnx")
    out = next(o for o in model.graph.output if o.name == card["onnx"]["output"])
    change(model.graph, out, helper, numpy_helper)
    onnx.save(model, dst / "model.onnx")
    rehash_card(dst, version)
    return dst


def rename_output(graph, out, helper, new_nodes, final: str) -> None:
    """Make ``final`` the graph's output tensor ``out`` (by its old name)."""
    out = out.name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out:
                node.output[i] = "orig_out"
    graph.node.extend(new_nodes)
    graph.node.append(helper.make_node("Identity", [final], [out]))


def slow_graph(graph, out, helper, numpy_helper, matmuls: int = 24) -> None:
    """Add ``matmuls`` input-dependent 1024x1024 matrix products (their result times 0 is added to
    the output): ≈20x the digits model's time on one row with 24."""
    rng = np.random.default_rng(0)
    inp = graph.input[0].name
    width = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    graph.initializer.extend(
        [
            numpy_helper.from_array(rng.random((width, 1024), dtype=np.float32), "w0"),
            numpy_helper.from_array(rng.random((1024, 1024), dtype=np.float32) / 1024, "w1"),
            numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero"),
        ]
    )
    nodes = [helper.make_node("MatMul", [inp, "w0"], ["h0"])]
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w1"], [f"h{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"h{matmuls}"], ["s"], keepdims=1),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["orig_out", "z"], ["slow_out"]),
    ]
    rename_output(graph, out, helper, nodes, "slow_out")


@pytest.fixture(scope="session")
def digits_artifact(tmp_path_factory, digits):
    """A logistic-regression digits artifact (64 numeric columns, 10 classes) and its dataset."""
    path = tmp_path_factory.mktemp("serve") / "digits" / "artifact"
    spec = Spec(name="digits")
    return make_artifact(path, spec, "logistic", {"C": 1.0}, dataset=digits)


def churn_frame(n: int = 300) -> pd.DataFrame:
    """Categorical, numeric and missing values with a `churn` yes/no target (seeded)."""
    import numpy as np

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "plan": rng.choice(["basic", "pro"], n),
            "income": rng.normal(50, 10, n),
        }
    )
    frame.loc[::17, "age"] = np.nan
    frame.loc[::13, "city"] = None
    frame["churn"] = np.where((frame["plan"] == "pro") ^ (frame["income"] > 50), "yes", "no")
    return frame


@pytest.fixture(scope="session")
def mixed_artifact(tmp_path_factory):
    """A table with categorical, numeric and missing values: the pandas path of the predictor."""
    frame = churn_frame()
    root = tmp_path_factory.mktemp("serve") / "mixed"
    root.mkdir(exist_ok=True)
    csv = root / "churn.csv"
    frame.to_csv(csv, index=False)
    spec = Spec(name="churn", data={"source": str(csv), "target": "churn"})
    return make_artifact(root / "artifact", spec, "logistic")


def digits_rows(data, n: int | None = None) -> list[list]:
    """Raw test rows (lists in column order), as a client sends them."""
    rows = data.raw_test.drop(columns=[data.preprocessor.target]).to_numpy().tolist()
    return rows if n is None else rows[:n]


class Server:
    """`automodel serve ARTIFACT` in a subprocess (its own Ray), with what it printed on start."""

    def __init__(self, artifact: Path, *args: str, env: dict | None = None, timeout: float = 240):
        from automodel.serve._launch import free_port

        self.port = free_port()
        self.log = Path(artifact).parent / f"serve-{self.port}.log"
        cmd = [
            sys.executable,
            "-m",
            "automodel.cli",
            "serve",
            str(artifact),
            "--port",
            str(self.port),
            *args,
        ]
        full_env = {**os.environ, "RAY_metrics_report_interval_ms": "1000", **(env or {})}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=open(self.log, "w"),
            text=True,
            env=full_env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + timeout
        while not any(line.startswith("serving ") for line in self.lines):
            if self.proc.poll() is not None or time.time() > deadline:
                self.kill()
                raise RuntimeError(f"automodel serve did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        while not any("ray address" in line for line in self.lines):
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        text = "\n".join(self.lines)
        self.metrics_url = re.search(r"metrics \(Prometheus\): (\S+)", text).group(1)
        self.ray_address = re.search(r"ray address: (\S+)", text).group(1)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def replicas(self) -> list[int]:
        """PIDs of this server's live Serve replica processes (read from /proc)."""
        from automodel.serve._launch import _alive, _descendants

        out = []
        for pid in _descendants(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "ServeReplica:" in cmd and _alive(pid):
                out.append(pid)
        return sorted(out)

    def kill(self) -> None:
        """Ctrl-C (the server stops Serve and its Ray), then SIGKILL of its group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
                return
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


class Load:
    """``conns`` keep-alive connections POSTing ``body`` back to back in a thread, until stop()."""

    def __init__(self, url: str, body: bytes, conns: int = 8, headers: dict | None = None):
        self.url, self.body, self.conns = url, body, conns
        self.headers = {"content-type": "application/json", **(headers or {})}
        self.results: list[tuple[float, int, str]] = []  # (time, status or 0, version or error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    async def _main(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.conns, max_keepalive_connections=self.conns)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def worker():
                while not self._stop.is_set():
                    try:
                        r = await client.post(self.url, content=self.body, headers=self.headers)
                        version = (
                            r.json().get("version", "") if r.status_code == 200 else r.text[:100]
                        )
                        self.results.append((time.time(), r.status_code, version))
                    except Exception as exc:  # a dropped connection counts as a failed request
                        self.results.append((time.time(), 0, type(exc).__name__))
                        await asyncio.sleep(0.01)

            await asyncio.gather(*(worker() for _ in range(self.conns)))

    def stop(self) -> list[tuple[float, int, str]]:
        self._stop.set()
        self._thread.join(60)
        return self.results
