"""GPU proof of the shared training recipe: plain torch, no Ray, on one CUDA device.

Runs :func:`automodel.models._recipe.train_epoch` (the function search trials, the final fit and
compression's fine-tune all train with) for a trial-like fit (small MLP, small batches) and a
final-fit-like fit (wider MLP, large batches, more rows), with bf16 autocast where the GPU
supports it, and measures training samples/s against a plain torch loop on the same GPU and the
same rows (the loop a user would write: AdamW, no schedule, no clipping), in bf16 and in fp32.
Each fit also reports held-out accuracy, so a fast loop that learns less shows.

The recipe module is loaded by its path: it needs only torch and numpy, so this runs on a GPU
machine without Ray, scikit-learn or the rest of automodel installed.

    python benchmarks/gpu_proof.py                      # CUDA; writes the gpu_proof section
    python benchmarks/gpu_proof.py --device cpu --quick  # a smoke run on CPU; prints only
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import table, write_section  # noqa: E402


def load_recipe():
    """``automodel/models/_recipe.py`` as a module of its own (no package imports)."""
    path = ROOT / "automodel" / "models" / "_recipe.py"
    spec = importlib.util.spec_from_file_location("automodel_recipe", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


R = load_recipe()

# name: rows, features, classes, hidden widths, batch, epochs (quick: rows / 500, 3 epochs)
FITS = {
    "trial-like": dict(
        rows=60_000, features=64, classes=10, hidden=[256, 256], batch=128, epochs=5
    ),
    "final-fit-like": dict(
        rows=1_000_000, features=128, classes=10, hidden=[1024, 1024, 1024], batch=4096, epochs=4
    ),
}


def mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Module:
    """The mlp family's network (Linear, ReLU, Dropout per hidden layer)."""
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(0.1)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def make_data(rows: int, features: int, classes: int, device: torch.device, seed: int = 0):
    """A learnable table: labels from a random two-layer teacher; 10% held out."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(rows, features, generator=g)
    teacher = torch.randn(features, 64, generator=g), torch.randn(64, classes, generator=g)
    y = (torch.tanh(X @ teacher[0]) @ teacher[1]).argmax(dim=1)
    cut = rows - rows // 10
    to = (lambda t: t.to(device)) if device.type == "cuda" else (lambda t: t)
    return to(X[:cut]), to(y[:cut]), to(X[cut:]), to(y[cut:])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def accuracy(model: nn.Module, X, y, bf16: bool) -> float:
    model.eval()
    with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=bf16):
        pred = torch.cat(
            [model(X[i : i + 65536]).float().argmax(1) for i in range(0, len(X), 65536)]
        )
    return float((pred == y).float().mean())


def run_recipe(fit: dict, data, device: torch.device) -> dict:
    """The shared recipe: schedule with warm-up, clipping, bf16 where supported."""
    X, y, Xv, yv = data
    torch.manual_seed(0)
    model = mlp(fit["features"], fit["hidden"], fit["classes"]).to(device)
    recipe = R.Recipe(lr=3e-3, weight_decay=1e-4, batch_size=fit["batch"], epochs=fit["epochs"])
    optimizer = recipe.make_optimizer(model)
    steps = math.ceil(len(X) / recipe.batch_size)

    def epoch(e: int):
        batches = R.epoch_batches(X, y, recipe.batch_size, R.epoch_generator(0, e), device)
        return R.train_epoch(
            model, batches, optimizer, recipe, task="classification", epoch=e, steps=steps, seed=0
        )

    return _timed(
        epoch,
        fit,
        len(X),
        device,
        model,
        Xv,
        yv,
        R.use_bf16(recipe, device),
        "shared recipe (train_epoch)",
    )


def run_plain(fit: dict, data, device: torch.device, bf16: bool) -> dict:
    """What a user writes by hand: AdamW at a fixed rate, shuffled batches, optional autocast."""
    X, y, Xv, yv = data
    torch.manual_seed(0)
    model = mlp(fit["features"], fit["hidden"], fit["classes"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    bs = fit["batch"]

    def epoch(e: int):
        model.train()
        order = torch.randperm(len(X), device=X.device)
        for i in range(0, len(X), bs):
            idx = order[i : i + bs]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(model(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    label = f"plain torch loop ({'bf16' if bf16 else 'fp32'})"
    return _timed(epoch, fit, len(X), device, model, Xv, yv, bf16, label)


def _timed(epoch, fit, rows, device, model, Xv, yv, bf16, label) -> dict:
    epoch(1)  # warm-up: kernel selection, allocator, cuBLAS handles; not timed
    sync(device)
    start = time.perf_counter()
    for e in range(2, fit["epochs"] + 1):
        epoch(e)
    sync(device)
    seconds = time.perf_counter() - start
    timed_rows = rows * (fit["epochs"] - 1)
    return {
        "label": label,
        "samples_s": timed_rows / seconds,
        "seconds": seconds,
        "accuracy": accuracy(model, Xv, yv, bf16),
        "bf16": bf16,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="1/500 of the rows, 3 epochs: a smoke run")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu --quick for a smoke run")
    rows_out = []
    for name, fit in FITS.items():
        fit = dict(fit)
        if args.quick:
            fit.update(rows=max(2000, fit["rows"] // 500), epochs=3)
        data = make_data(fit["rows"], fit["features"], fit["classes"], device)
        results = [run_recipe(fit, data, device), run_plain(fit, data, device, bf16=True)]
        if device.type == "cuda":
            results.append(run_plain(fit, data, device, bf16=False))
        else:
            results = [results[0], run_plain(fit, data, device, bf16=False)]
        base = results[1]["samples_s"]
        for r in results:
            shape = (
                f"{fit['rows']:,} x {fit['features']}, MLP {fit['hidden']}, batch {fit['batch']}"
            )
            rows_out.append(
                [
                    name,
                    shape,
                    r["label"],
                    "yes" if r["bf16"] else "no",
                    r["samples_s"],
                    r["samples_s"] / base,
                    r["accuracy"],
                ]
            )
            print(rows_out[-1], flush=True)
    header = [
        "fit",
        "rows, model, batch",
        "loop",
        "bf16",
        "train samples/s",
        "vs plain loop",
        "held-out accuracy",
    ]
    body = table(header, rows_out)
    print(body)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    if device.type != "cuda" or args.no_write:
        print(f"\n(not written to RESULTS.md: device {what}{', quick' if args.quick else ''})")
        return
    write_section(
        "gpu_proof",
        "GPU proof: the shared training recipe on CUDA (plain torch, no Ray)",
        f"`python benchmarks/gpu_proof.py` on {what} (torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}, bf16 supported: {torch.cuda.is_bf16_supported()}, load average "
        f"{os.getloadavg()[0]:.1f}). `train_epoch` is the function automodel's search trials, "
        "final fit and fine-tune train with (cosine schedule with warm-up, gradient clipping, bf16 "
        "autocast, rows moved to the GPU once); the plain loop is AdamW at a fixed rate with "
        "shuffled batches from the same on-GPU tensors. Samples/s over epochs 2..N (epoch 1 warms "
        'up); "vs plain loop" divides by the plain bf16 loop.\n\n' + body,
    )


if __name__ == "__main__":
    main()
