"""Large sweeps: does the 10,000th trial cost what the 10th did?

(a) automodel - ``automodel tune`` (a subprocess, as a user runs it) over one cheap family:
                logistic regression on iris, TPE, FIFO, 2 trials at a time, no ensemble.
(b) ray_tune  - a plain Ray Tune script on the same trial (scikit-learn's LogisticRegression(C,
                max_iter=500) on the same iris split, C log-uniform in [1e-3, 100]) with Ray
                Tune's documented settings for many short trials: ``OptunaSearch`` (TPE),
                ``max_concurrent_trials=2``, ``reuse_actors=True``, the auto loggers off
                (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``), experiment snapshots throttled
                (``TUNE_GLOBAL_CHECKPOINT_S=100``, as Tune's bookkeeping release test), console
                output off; a callback prints one line a finished trial, as automodel's progress
                does.

Each run's finished-trial lines are time-stamped as they arrive: trials/s overall (from the
sweep's start), over the first fifth and over the last fifth of the trials (between finished
trials, so Ray's start and the first actor's imports stay out of the first fifth), the wall time
of the whole command and the driver process's peak RSS (polled). ``--baseline-limit-s`` stops a
plain Ray Tune run that would take longer; its row then says how far it got.

``--profile N`` samples an N-trial automodel sweep's driver with py-spy (``pip install py-spy``)
for 20 s at 5 points and writes where its time goes per trial.

    python benchmarks/sweep_scale.py [--trials 1000 5000 10000] [--only automodel|ray_tune]
    python benchmarks/sweep_scale.py --profile 5000
    python benchmarks/sweep_scale.py --concurrency 2 32 --nodes 3 [--trials 2000]

``--concurrency`` starts one cluster of ``--nodes`` local Ray nodes (``--cpus-per-node`` logical
CPUs each) and runs the automodel sweep attached to it at each ``search.max_concurrent``: trials/s,
and the driver's CPU per trial (what limits it when the trials outnumber the real cores).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import table, write_section  # noqa: E402

SPEC = """\
name: sweep_scale
data: {{source: "builtin:iris", target: target, test_size: 0.2, seed: 0}}
search: {{families: [logistic], scheduler: fifo, searcher: tpe, num_samples: {n},
          max_concurrent: {concurrent}, ensemble: false}}
"""
AUTOMODEL_LINE = re.compile(r"search: trial (\d+)/")
PLAIN_LINE = re.compile(r"^trial (\d+) done")


# --- (b) the plain Ray Tune script, run as `python sweep_scale.py --plain N` -----------------


def plain_ray_tune(n: int) -> None:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "100")
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    X, y = load_iris(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y
    )

    def trainable(config, data):
        from sklearn.linear_model import LogisticRegression

        Xt, yt, Xv, yv = data
        model = LogisticRegression(C=config["C"], max_iter=500).fit(Xt, yt)
        tune.report({"accuracy": float(model.score(Xv, yv))})

    class Done(tune.Callback):
        def __init__(self):
            self.count = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.count += 1
            print(f"trial {self.count} done", file=sys.stderr, flush=True)

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print("starting", file=sys.stderr, flush=True)
    tuner = tune.Tuner(
        tune.with_parameters(trainable, data=(X_train, y_train, X_val, y_val)),
        param_space={"C": tune.loguniform(1e-3, 100.0)},
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(metric="accuracy", mode="max", seed=0),
            num_samples=n,
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=sys.argv[-1], callbacks=[Done()], verbose=0, log_to_file=False
        ),
    )
    tuner.fit()
    ray.shutdown()


# --- running one sweep ------------------------------------------------------------------------


def run(
    cmd: list[str], line: re.Pattern, limit_s: float | None = None, env: dict | None = None
) -> dict:
    """Run ``cmd``; time-stamp its finished-trial lines; poll the driver's peak RSS and CPU."""
    import psutil

    t0 = time.time()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    peak, cpu = [0], [0.0]

    def poll():
        p = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak[0] = max(peak[0], p.memory_info().rss)
                times = p.cpu_times()
                cpu[0] = times.user + times.system
            except psutil.Error:
                return
            time.sleep(0.25)

    threading.Thread(target=poll, daemon=True).start()
    timer = threading.Timer(limit_s or 0, proc.terminate)
    timer.daemon = True  # a run that ends first must not keep this script alive for the limit
    if limit_s:
        timer.start()
    load_before = os.getloadavg()[0]
    start, stamps, tail = None, [], collections.deque(maxlen=20)
    for text in proc.stderr:
        tail.append(text)
        if start is None and ("starting" in text):
            start = time.time()
        if line.search(text):
            stamps.append(time.time())
    proc.wait()
    timer.cancel()
    wall = time.time() - t0
    if not stamps:
        raise SystemExit(f"{cmd}: no trial finished:\n{''.join(tail)}")
    return {
        "stamps": stamps,
        "start": start or t0,
        "wall": wall,
        "peak_mib": peak[0] / 2**20,
        "driver_cpu_s": cpu[0],
        "load": (load_before, os.getloadavg()[0]),
        "stopped": proc.returncode != 0,
    }


def rates(r: dict) -> dict:
    s = r["stamps"]
    n, fifth = len(s), max(2, len(s) // 5)
    return {
        "trials": n,
        "overall": n / (s[-1] - r["start"]),
        "first": (fifth - 1) / (s[fifth - 1] - s[0]),
        "last": fifth / (s[-1] - s[-fifth - 1]),
    }


def automodel_sweep(
    n: int, workdir: Path, concurrent: int = 2, cluster=None, limit_s: float | None = None
) -> dict:
    spec = workdir / f"spec_{n}_{concurrent}.yaml"
    text = SPEC.format(n=n, concurrent=concurrent)
    if cluster is not None:
        text += f"runtime: {{address: '{cluster.gcs}'}}\n"
    spec.write_text(text)
    out = workdir / f"automodel_{n}_{concurrent}"
    cmd = [sys.executable, "-m", "automodel.cli", "tune", str(spec), "--out", str(out)]
    r = run(cmd, AUTOMODEL_LINE, limit_s, env=cluster.env if cluster is not None else None)
    if r["stopped"]:
        return r
    r["bytes"] = {f: (out / f).stat().st_size for f in ("trials.jsonl", "leaderboard.csv")}
    r["bytes"]["tune/optuna.jsonl"] = (out / "tune" / "optuna.jsonl").stat().st_size
    return r


def plain_sweep(n: int, workdir: Path, limit_s: float | None) -> dict:
    cmd = [sys.executable, __file__, "--plain", str(n), str(workdir / f"ray_tune_{n}")]
    return run(cmd, PLAIN_LINE, limit_s)


# --- many trials at once: several local nodes ---------------------------------------------------


def local_nodes(nodes: int, cpus: int, base: Path):
    """``nodes`` Ray nodes on this machine, each advertising ``cpus`` logical CPUs (token auth)."""
    from tests.cluster.test_two_node import TwoNodeCluster

    return TwoNodeCluster(base, workers=nodes - 1, cpus=cpus, object_store=300_000_000)


def concurrency(
    n: int, levels: list[int], nodes: int, cpus: int, workdir: Path, limit_s: float | None
) -> None:
    """``automodel tune`` at each ``max_concurrent`` on one cluster of ``nodes`` local nodes."""
    import signal

    # `timeout` or Ctrl-C: stop the cluster this started on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = Path(tempfile.mkdtemp(prefix="amsw-", dir="/tmp"))  # short: Ray's socket paths
    cluster = local_nodes(nodes, cpus, base)
    rows = []
    try:
        for c in levels:
            r = automodel_sweep(n, workdir, concurrent=c, cluster=cluster, limit_s=limit_s)
            q = rates(r)
            cpu_ms = 1000 * r["driver_cpu_s"] / q["trials"]
            got = f"{q['trials']:,}" + (f" (stopped at {limit_s:g} s)" if r["stopped"] else "")
            rows.append(
                [c, got, round(r["wall"]), q["overall"], q["first"], q["last"]]
                + [f"{cpu_ms:.0f}", f"{r['load'][0]:.1f} / {r['load'][1]:.1f}"]
            )
            print(rows[-1], flush=True)
    finally:
        cluster.close()
    header = ["max_concurrent", "trials", "wall s", "trials/s overall", "first fifth"]
    header += ["last fifth", "driver CPU ms per trial", "load avg before / after"]
    write_section(
        "sweep_concurrency",
        "Many trials at once: max_concurrent on a cluster of several local nodes",
        f"`python benchmarks/sweep_scale.py --concurrency {' '.join(map(str, levels))} "
        f"--nodes {nodes} --cpus-per-node {cpus} --trials {n}"
        + (f" --baseline-limit-s {limit_s:g}" if limit_s else "")
        + f"`: one Ray cluster of {nodes} nodes "
        f"on this machine ({cpus} logical CPUs each, {nodes * cpus} in all, on "
        f"{os.cpu_count()} real cores), `automodel tune` attached to it with `runtime.address`, "
        "the same logistic-on-iris sweep as above at each `search.max_concurrent`.\n\n"
        + table(header, rows),
    )
    print(table(header, rows))


# --- profile ----------------------------------------------------------------------------------

CATEGORIES = (  # the first pattern a sampled stack holds names where the time went
    ("optuna/storages", "Optuna journal writes"),
    ("optuna", "searcher ask/tell (Optuna sampler)"),
    ("automodel/search/_searchers", "searcher ask/tell (Optuna sampler)"),
    ("automodel/search/_window", "searcher ask/tell (Optuna sampler)"),
    ("automodel/search/_progress", "progress line"),
    ("automodel/search/_history", "trials.jsonl + finished.jsonl"),
    ("tune/schedulers", "scheduler"),
    ("automodel/search/_schedulers", "scheduler"),
    ("tune/execution/experiment_state", "Tune experiment snapshot"),
    ("tune/experiment/trial.py", "Tune trial bookkeeping"),
    ("air/execution", "Tune actor manager, Ray calls"),
    ("_private/worker.py", "Tune actor manager, Ray calls"),
    ("ray/", "Tune controller, other"),
)


def profile(n: int, workdir: Path, points: int = 5) -> None:
    spec = workdir / "spec_profile.yaml"
    spec.write_text(SPEC.format(n=n, concurrent=2))
    cmd = [sys.executable, "-m", "automodel.cli", "tune", str(spec), "--out", str(workdir / "p")]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    done = [0]

    def count():
        for text in proc.stderr:
            if AUTOMODEL_LINE.search(text):
                done[0] += 1

    threading.Thread(target=count, daemon=True).start()
    columns, cells = [], collections.defaultdict(dict)
    for at in [int(n * (i + 0.1) / points) for i in range(points)]:
        while done[0] < at and proc.poll() is None:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
        raw = workdir / f"profile_{at}.txt"
        first = done[0]
        subprocess.run(
            ["py-spy", "record", "--pid", str(proc.pid), "--duration", "20", "--rate", "100"]
            + ["--format", "raw", "--nonblocking", "-o", str(raw)],
            capture_output=True,
        )
        trials = max(1, done[0] - first)
        column = f"trials {first:,}-{done[0]:,}"
        columns.append(column)
        total = collections.Counter()
        for stack_line in raw.read_text().splitlines():
            stack, _, samples = stack_line.rpartition(" ")
            name = next((c for p, c in CATEGORIES if p in stack), "other")
            total[name] += int(samples)
        for name, samples in total.items():
            cells[name][column] = samples * 10 / trials  # 100 Hz: 10 ms a sample
        cells["driver CPU, all"][column] = sum(total.values()) * 10 / trials
    proc.wait()
    names = sorted(cells, key=lambda c: -cells[c].get(columns[-1], 0))
    rows = [[c, *[f"{cells[c].get(col, 0):.1f}" for col in columns]] for c in names]
    load = os.getloadavg()[0]
    write_section(  # its own section: sweep_scale_profile keeps the before / after tables
        f"sweep_scale_profile_{n}",
        f"Where a {n:,}-trial sweep's driver spends its time (ms of driver CPU per finished trial)",
        f"`python benchmarks/sweep_scale.py --profile {n}`: py-spy samples the driver of "
        "`automodel tune` (logistic on iris, TPE, FIFO, 2 at a time) for 20 s at 5 points; a "
        "sample counts for the first of these it meets, innermost frames first. Load average "
        f"{load:.1f} on 2 cores at the end (the machine is shared).\n\n"
        + table(["ms per trial", *columns], rows),
    )
    print(table(["ms per trial", *columns], rows))


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[1000, 5000, 10000])
    ap.add_argument("--only", choices=("automodel", "ray_tune"))
    ap.add_argument("--baseline-limit-s", type=float, default=None)
    ap.add_argument("--profile", type=int, default=None, metavar="N")
    ap.add_argument(
        "--rows",
        type=Path,
        default=None,
        help="JSON file of rows: earlier ones kept, new ones added",
    )
    ap.add_argument("--concurrency", type=int, nargs="+", default=None, metavar="C")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--cpus-per-node", type=int, default=16)
    ap.add_argument("--plain", type=int, default=None, help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.plain:
        return plain_ray_tune(args.plain)
    workdir = Path(tempfile.mkdtemp(prefix="sweep_scale_"))
    if args.profile:
        return profile(args.profile, workdir)
    if args.concurrency:
        n = args.trials[0] if args.trials != ap.get_default("trials") else 2000
        return concurrency(
            n, args.concurrency, args.nodes, args.cpus_per_node, workdir, args.baseline_limit_s
        )
    header = [
        "system",
        "trials",
        "wall s",
        "trials/s overall",
        "first fifth",
        "last fifth",
        "last / first",
        "driver peak MiB",
        "load avg before / after",
        "bytes per trial",
    ]
    body = (
        "`python benchmarks/sweep_scale.py`: logistic regression on iris, TPE, FIFO, 2 trials "
        "at a time; (a) `automodel tune`, (b) a plain Ray Tune script with its documented "
        "settings for many short trials (OptunaSearch, reuse_actors, auto loggers off, "
        "`TUNE_GLOBAL_CHECKPOINT_S=100`). Rates between finished trials; the machine is shared "
        "with other work, so its 1-minute load average is given before and after each run.\n\n"
    )
    rows = json.loads(args.rows.read_text()) if args.rows and args.rows.exists() else []
    for n in args.trials:
        for system in ("automodel", "ray_tune"):
            if args.only and args.only != system:
                continue
            r = (
                automodel_sweep(n, workdir)
                if system == "automodel"
                else plain_sweep(n, workdir, args.baseline_limit_s)
            )
            q = rates(r)
            got = f"{q['trials']:,}" + (" (stopped)" if r["stopped"] else "")
            row = [
                system,
                got,
                round(r["wall"]),
                q["overall"],
                q["first"],
                q["last"],
                q["last"] / q["first"],
                round(r["peak_mib"]),
                f"{r['load'][0]:.1f} / {r['load'][1]:.1f}",
            ]
            if "bytes" in r:
                row.append(", ".join(f"{k} {v / q['trials']:.0f}" for k, v in r["bytes"].items()))
            else:
                row.append("")
            rows.append(row)
            print(row, flush=True)
            if args.rows:
                args.rows.write_text(json.dumps(rows))
            # after every run: a long benchmark cut short keeps what it measured
            write_section(
                "sweep_scale",
                "Large sweeps: trials/s at 1,000 to 10,000 trials",
                body + table(header, rows),
            )
    print(table(header, rows))


if __name__ == "__main__":
    main()
