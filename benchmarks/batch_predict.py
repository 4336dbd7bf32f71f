"""Batch prediction: 2 M rows x 50 features of Parquet, a plain loop vs `automodel predict`.

(a) plain — what a user writes without automodel's batch path: one process, for each file
    ``pd.read_parquet`` -> the artifact's ``Preprocessor.transform`` -> ONNX Runtime (its default
    threads) -> argmax -> ``DataFrame.to_parquet`` (id + prediction).
(b) automodel — ``automodel predict ARTIFACT DIR --out OUT --id id`` (the CLI, Ray Data: read
    tasks -> ONNX Runtime actor pool -> Parquet), the same rows, the same output columns.

Each runs as its own process; the parent samples its resident memory (psutil, every 50 ms): the
driver's peak, and for (b) the peak of its whole process tree (Ray's workers included; shared
object-store pages count once per process that maps them, so the tree figure is an upper bound).
Rows/s are end to end (process start to exit: imports, Ray start, writing included).

    python benchmarks/batch_predict.py [--rows 2000000] [--files 10] [--family mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import table, write_section  # noqa: E402

FEATURES = 50
TARGET_SPEEDUP = 1.5
TARGET_DRIVER_GB = 1.0

PLAIN = r"""
import glob, json, os, sys, time
import numpy as np, pandas as pd, onnxruntime as ort
from automodel.data import Preprocessor

art, inp, out = sys.argv[1:4]
card = json.load(open(os.path.join(art, "card.json")))
prep = Preprocessor.load(os.path.join(art, "preprocess.json"))
sess = ort.InferenceSession(os.path.join(art, "model.onnx"), providers=["CPUExecutionProvider"])
classes = np.array(card["classes"])
os.makedirs(out, exist_ok=True)
rows = 0
for path in sorted(glob.glob(os.path.join(inp, "*.parquet"))):
    df = pd.read_parquet(path)
    X = prep.transform(df[prep.input_columns])
    proba = sess.run(None, {"input": X})[0]
    pd.DataFrame({"id": df["id"], "prediction": classes[proba.argmax(axis=1)]}).to_parquet(
        os.path.join(out, os.path.basename(path)), index=False)
    rows += len(df)
print(json.dumps({"rows": rows}))
"""


def make_data(folder: Path, rows: int, files: int) -> Path:
    """``rows`` x 50 float features plus an int64 id, in ``files`` Parquet files (made once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = folder / "_done"
    if done.exists() and done.read_text() == f"{rows} {files}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = rows // files
    for i in range(files):
        n = per if i < files - 1 else rows - per * (files - 1)
        X = rng.normal(size=(n, FEATURES))
        cols = {"id": pa.array(np.arange(i * per, i * per + n, dtype=np.int64))}
        cols |= {f"x{j}": pa.array(X[:, j]) for j in range(FEATURES)}
        pq.write_table(pa.table(cols), folder / f"part-{i:03d}.parquet")
    done.write_text(f"{rows} {files}")
    return folder


def make_artifact(path: Path, family: str) -> Path:
    """A model over x0..x49, trained in-process on 20 k synthetic rows (no Ray)."""
    if (path / "card.json").exists():
        return path
    from automodel.data import load_dataset
    from automodel.models import get_family
    from automodel.pipeline import build_artifact
    from automodel.spec import Spec
    from automodel.train import TrainedModel

    spec = Spec(
        name="batch", data={"source": f"synthetic:classification?rows=20000&features={FEATURES}"}
    )
    data = load_dataset(spec.data)
    params = {"hidden": [128, 64]} if family == "mlp" else None
    cls = get_family(family)
    model = cls(data.task, data.n_features, data.n_outputs, params, max_steps=3)
    model.fit(data.X_train, data.y_train)
    info = {"workers": 1, "use_gpu": False, "epochs": 3, "restarts": 0, "wall_s": 0.0}
    build_artifact(spec, data, TrainedModel(model, family, model.params, info), path)
    return path


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; wall time, its exit, output and RSS peaks (driver, process tree) in GB."""
    import psutil

    start = time.time()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    peak = {"driver": 0, "tree": 0}
    stop = threading.Event()

    def sample():
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                own = p.memory_info().rss
                tree = own
                for c in p.children(recursive=True):
                    try:
                        tree += c.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            peak["driver"] = max(peak["driver"], own)
            peak["tree"] = max(peak["tree"], tree)
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    wall = time.time() - start
    stop.set()
    t.join()
    return {
        "wall_s": wall,
        "rc": proc.returncode,
        "stdout": out,
        "stderr": err,
        "driver_gb": peak["driver"] / 2**30,
        "tree_gb": peak["tree"] / 2**30,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--family", default="mlp")
    ap.add_argument("--work", default="/tmp/automodel-bench-batch-predict")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=None)
    ap.add_argument("--num-cpus", type=float, default=None)
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = make_data(work / f"data-{args.rows}", args.rows, args.files)
    size_mb = sum(f.stat().st_size for f in data.glob("*.parquet")) / 2**20
    print(
        f"data: {args.rows:,} rows x {FEATURES} in {args.files} files, {size_mb:.0f} MB "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
    art = make_artifact(work / f"artifact-{args.family}", args.family)

    load_before = os.getloadavg()
    shutil.rmtree(work / "out-plain", ignore_errors=True)
    plain = measure([sys.executable, "-c", PLAIN, str(art), str(data), str(work / "out-plain")])
    assert plain["rc"] == 0, plain["stderr"][-3000:]
    print(f"plain: {plain['wall_s']:.1f} s, driver {plain['driver_gb']:.2f} GB", flush=True)

    extra = []
    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--concurrency", args.concurrency),
        ("--num-cpus", args.num_cpus),
    ):
        if value is not None:
            extra += [flag, str(value)]
    out = work / "out-automodel"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "automodel.cli", "predict", str(art), str(data)]
    cmd += ["--out", str(out), "--id", "id", "--overwrite", *extra]
    auto = measure(cmd)
    retried = auto["rc"] != 0 and "did not start" in auto["stderr"]
    if retried:  # a loaded machine can time Ray's own start out (the raylet's 15 s agent wait)
        print("automodel: Ray did not start, once more", flush=True)
        auto = measure(cmd)
    assert auto["rc"] == 0, auto["stderr"][-3000:]
    summary = json.loads((out / "predict.json").read_text())
    assert summary["scored"] == args.rows, summary
    print(f"automodel: {auto['wall_s']:.1f} s, driver {auto['driver_gb']:.2f} GB", flush=True)
    load_after = os.getloadavg()

    # Same predictions, row for row (ids joined).
    import pandas as pd

    a = pd.read_parquet(work / "out-plain").sort_values("id")["prediction"].to_numpy()
    b = pd.concat(pd.read_parquet(f) for f in out.glob("*.parquet")).sort_values("id")
    agree = float((a == b["prediction"].to_numpy()).mean())

    rate_plain = args.rows / plain["wall_s"]
    rate_auto = args.rows / auto["wall_s"]
    rows = [
        [
            "plain loop (pandas + Preprocessor + ORT, 1 process)",
            plain["wall_s"],
            rate_plain,
            1.0,
            plain["driver_gb"],
            plain["driver_gb"],
        ],
        [
            f"automodel predict ({len(summary['actors'])} actor(s))",
            auto["wall_s"],
            rate_auto,
            rate_auto / rate_plain,
            auto["driver_gb"],
            auto["tree_gb"],
        ],
    ]
    header = ["run", "wall s", "rows/s", "vs plain", "driver peak GB", "process tree peak GB"]
    speedup = rate_auto / rate_plain
    verdict = (
        f"target >= {TARGET_SPEEDUP}x the plain loop's rows/s: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'} ({speedup:.2f}x); "
        f"driver peak <= {TARGET_DRIVER_GB} GB: "
        f"{'met' if auto['driver_gb'] <= TARGET_DRIVER_GB else 'NOT met'} ({auto['driver_gb']:.2f} GB)"
    )
    progress = [line for line in auto["stderr"].splitlines() if "predict:" in line]
    body = "\n".join(
        [
            f"{args.rows:,} rows x {FEATURES} float features + id, {args.files} Parquet files "
            f"({size_mb:.0f} MB), model `{args.family}` ({summary['model']} v{summary['version']}); "
            f"automodel flags: `{' '.join(extra) or '(defaults)'}`.",
            f"Load average before / after: {', '.join(f'{x:.2f}' for x in load_before)} / "
            f"{', '.join(f'{x:.2f}' for x in load_after)} (other engineers' work shares the 2 cores).",
            "",
            table(header, rows),
            "",
            (
                "The first automodel attempt could not start Ray on the loaded machine; the row is "
                "the second. "
                if retried
                else ""
            )
            + f"{verdict}. Predictions agree on {agree:.4%} of rows. automodel's own summary: "
            f"{summary['wall_s']:.1f} s inside `predict()` (Ray start included), "
            f"{summary['rows_per_s']:,.0f} rows/s.",
            "",
            "Progress lines of the automodel run:",
            "",
            "```",
            *progress[-8:],
            "```",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("batch_predict", "Batch prediction: plain loop vs automodel predict", body)


if __name__ == "__main__":
    main()
