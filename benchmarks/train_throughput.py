"""Plain single-process PyTorch vs automodel's Ray Train loop: per-epoch throughput, start-up cost.

Same data (synthetic classification, ``--rows`` training rows), same MLP, same global batch,
same optimizer, same total threads; every epoch trains on the training rows and scores the
validation rows in both. automodel runs 1 worker x T threads and T workers x 1 thread (rows
cached in worker memory, and streamed from Ray Data every epoch).

    python benchmarks/train_throughput.py                 # CPU, 200k rows, writes RESULTS.md
    python benchmarks/train_throughput.py --gpu           # 1 GPU, bf16 autocast, both sides

"Start-up" is the time from ``trainer.fit()`` to the first worker group starting its loop;
"fixed cost" is everything in the wall time that is not an epoch (start-up, the first read of the
shard, checkpoint uploads, shutdown).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Both sides alike: OpenMP threads sleep while they wait (automodel sets this for its workers with
# more than one thread); on a shared machine spinning threads are many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks._results import table, write_section  # noqa: E402

PARAMS = {"hidden": 256, "layers": 2, "dropout": 0.0, "lr": 1e-3, "weight_decay": 1e-4}


def load(rows: int, features: int):
    from automodel.data import load_dataset
    from automodel.spec import DataSpec

    # train = rows_total * (1 - test_size) * (1 - val_size)
    total = int(rows / (0.8 * 0.85)) + 1
    return load_dataset(
        DataSpec(source=f"synthetic:classification?rows={total}&features={features}&seed=0")
    )


def plain_torch(d, *, epochs: int, batch: int, threads: int, device: str, bf16: bool) -> dict:
    """The loop a user would write by hand: tensors in memory, shuffle, AdamW, score val."""
    import torch
    from torch import nn

    from automodel.metrics import score
    from automodel.models import MLPModule

    start = time.time()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = MLPModule(
        d.n_features, d.n_outputs, [PARAMS["hidden"]] * PARAMS["layers"], PARAMS["dropout"]
    ).to(dev)
    opt = torch.optim.AdamW(
        model.parameters(), lr=PARAMS["lr"], weight_decay=PARAMS["weight_decay"]
    )
    loss_fn = nn.CrossEntropyLoss()
    X = torch.from_numpy(d.X_train).to(dev)
    y = torch.from_numpy(d.y_train).to(dev)
    Xv = torch.from_numpy(d.X_val).to(dev)
    first = time.time() - start
    times, acc = [], None
    for _ in range(epochs):
        t0 = time.time()
        model.train()
        for idx in torch.randperm(len(X), device=dev).split(batch):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            proba = torch.softmax(model(Xv).float(), dim=1).cpu().numpy()
        acc = score("accuracy", d.y_val, proba.argmax(axis=1), proba)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.time() - t0)
    return {
        "epoch_s": statistics.median(times[1:] or times),
        "startup_s": first,
        "wall_s": time.time() - start,
        "val": acc,
    }


def automodel_train(
    d, *, epochs: int, batch: int, workers: int, threads: int, gpu: bool, stream: bool
) -> dict:
    from automodel.spec import Spec
    from automodel.train import train_model

    os.environ["AUTOMODEL_TRAIN_CACHE_MB"] = "0" if stream else "1024"
    resources = {"CPU": threads, **({"GPU": 1} if gpu else {})}
    spec = Spec.model_validate(
        {
            "train": {
                "num_workers": workers,
                "use_gpu": gpu,
                "resources_per_worker": resources,
                "epochs": epochs,
                "lr_schedule": "constant",
                "warmup_epochs": 0,
                "early_stopping_patience": None,
                "checkpoint_every": 1,
                "keep_checkpoints": 1,
                "amp": True,
            },
            "runtime": {"quiet": True},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        trained = train_model(spec, d, "mlp", {**PARAMS, "batch_size": batch}, run_dir=tmp)
    info = trained.info
    return {
        "epoch_s": info["epoch_s"],
        "startup_s": info["startup_s"],
        "wall_s": info["wall_s"],
        "overhead_s": info["overhead_s"],
        "val": trained.history[-1]["val_accuracy"],
        "data": info["data"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="training rows")
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=512, help="global batch size")
    ap.add_argument("--threads", type=int, default=2, help="total CPU threads on each side")
    ap.add_argument(
        "--gpu", action="store_true", help="1 GPU, bf16 autocast, plain torch on the same GPU"
    )
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args()

    import ray

    from automodel.cluster import ray_session
    from automodel.spec import RuntimeSpec

    load_before = os.getloadavg()[0]
    d = load(args.rows, args.features)
    n = len(d.X_train)
    print(
        f"{n} training rows x {d.n_features} features, {args.epochs} epochs, batch {args.batch}",
        flush=True,
    )

    def plain(label: str) -> dict:
        r = plain_torch(
            d,
            epochs=args.epochs,
            batch=args.batch,
            threads=args.threads,
            device="cuda" if args.gpu else "cpu",
            bf16=args.gpu,
        )
        results.append(
            (f"plain PyTorch, 1 process ({label})", f"1 x {args.threads}", "in memory", r)
        )
        print(results[-1], flush=True)
        return r

    results = []
    plain("first")
    with ray_session(RuntimeSpec(num_cpus=None if args.gpu else args.threads)):
        t0 = time.time()
        ray.get(ray.remote(lambda: 0).remote())
        print(f"ray up in {time.time() - t0:.1f}s", flush=True)
        runs = (
            [(1, args.threads, False, "cached")]
            if args.gpu
            else [
                (1, args.threads, False, "cached"),
                (args.threads, 1, False, "cached"),
                (args.threads, 1, True, "streamed"),
            ]
        )
        for workers, threads, stream, label in runs:
            r = automodel_train(
                d,
                epochs=args.epochs,
                batch=args.batch,
                workers=workers,
                threads=threads,
                gpu=args.gpu,
                stream=stream,
            )
            results.append(
                (f"automodel Ray Train, {workers} worker(s)", f"{workers} x {threads}", label, r)
            )
            print(results[-1], flush=True)

    plain("last")  # on a shared machine load drifts: the baseline is the faster of two runs
    base = min(
        (r for name, _, _, r in results if name.startswith("plain")), key=lambda r: r["epoch_s"]
    )
    rows = []
    for name, shape, data, r in results:
        rows.append(
            [
                name,
                shape,
                data,
                r["epoch_s"],
                n / r["epoch_s"],
                base["epoch_s"] / r["epoch_s"],
                r["startup_s"],
                r.get("overhead_s", r["startup_s"]),
                r["wall_s"],
                r["val"],
            ]
        )
    header = [
        "run",
        "workers x threads",
        "rows",
        "epoch s",
        "rows/s",
        "x plain",
        "start-up s",
        "fixed cost s",
        "wall s",
        "val acc",
    ]
    body = table(header, rows)
    print(body)
    if args.no_write:
        return
    load_avg = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    device = "1 GPU, bf16 autocast" if args.gpu else f"CPU, {args.threads} threads on each side"
    note = (
        f"`python benchmarks/train_throughput.py{' --gpu' if args.gpu else ''}`: {n:,} training rows x "
        f"{d.n_features} features, MLP {PARAMS['layers']}x{PARAMS['hidden']}, global batch {args.batch}, "
        f"{args.epochs} epochs, {device}. Epoch s is the median epoch (training, validation scoring, "
        "reporting); x plain compares with the faster of the two plain runs; start-up is "
        "`trainer.fit()` to the first worker's loop; fixed cost is the wall time that is not an "
        f"epoch. Machine {load_avg}."
    )
    name = "train_throughput_gpu" if args.gpu else "train_throughput"
    write_section(
        name,
        "Training throughput: plain PyTorch vs Ray Train" + (" (GPU)" if args.gpu else ""),
        note + "\n\n" + body + "\n\n" + os.environ.get("BENCH_NOTE", ""),
    )


if __name__ == "__main__":
    main()
