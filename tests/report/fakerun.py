"""A complete run directory written as plain files in the documented formats.

It stands for what every stage writes (the sweep's trials.jsonl, Ray Train history with a restart,
compression variants, a serving benchmark section), so the report is tested on all of it even
before a real run produces every part.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

FAMILIES = ("mlp", "random_forest", "logistic")


def _curve(base: float, rate: float, it: int) -> float:
    return round(base - 0.35 * math.exp(-rate * it), 4)


def write_fake_run(run_dir: Path, *, task: str = "classification") -> Path:
    """Write a run directory: spec, leaderboard, trials.jsonl, card, features, evaluation, RESULTS.md."""
    run_dir.mkdir(parents=True, exist_ok=True)
    metric = "accuracy" if task == "classification" else "r2"
    (run_dir / "spec.yaml").write_text(
        f"name: fake\ndata:\n  source: builtin:{'digits' if task == 'classification' else 'diabetes'}\n"
        "search:\n  families: [mlp, random_forest, logistic]\n  num_samples: 9\n"
        "compress:\n  quantize: int8\n  max_metric_drop: 0.01\n"
    )
    # Nine trials: three an family; ASHA stops the weak ones early.
    trials, board = [], []
    for i in range(9):
        fam = FAMILIES[i % 3]
        tid = f"t{i:03d}"
        lr = 10 ** (-4 + i * 0.35)
        iters = 10 if i % 4 in (0, 1) else 2
        base = {"mlp": 0.97, "random_forest": 0.95, "logistic": 0.93}[fam] - 0.004 * i
        for it in range(1, iters + 1):
            trials.append(
                {
                    "trial_id": tid,
                    "family": fam,
                    "k": 40 + i,
                    "iteration": it,
                    metric: _curve(base, 0.5, it),
                    "loss": round(1 / it, 4),
                    "time": round(i * 1.5 + it * 0.1, 2),
                }
            )
        params = (
            {"lr": lr, "hidden": [64, 128, 256][i % 3], "dropout": 0.1 * (i % 3)}
            if fam == "mlp"
            else {"n_estimators": 20 * (i + 1), "max_depth": 4 + i}
            if fam == "random_forest"
            else {"C": 0.1 * (i + 1)}
        )
        board.append(
            {
                "trial_id": tid,
                "family": fam,
                metric: trials[-1][metric],
                "iterations": iters,
                "status": "completed" if iters == 10 else "stopped_early",
                "k": 40 + i,
                "params": json.dumps(params, sort_keys=True),
                "time_s": round(0.5 + i * 0.3, 2),
            }
        )
    board.sort(key=lambda r: -r[metric])
    with (run_dir / "leaderboard.csv").open("w", newline="") as fh:
        w = csv.DictWriter(
            fh,
            fieldnames=[
                "trial_id",
                "family",
                metric,
                "iterations",
                "status",
                "k",
                "params",
                "time_s",
            ],
        )
        w.writeheader()
        w.writerows(board)
    (run_dir / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    best = board[0]
    history = []
    for epoch in range(1, 13):
        h = {
            "epoch": epoch,
            "train_loss": round(1.5 / epoch, 4),
            "val_loss": round(1.6 / epoch + 0.05, 4),
            f"val_{metric}": _curve(0.975, 0.4, epoch),
            "restarts": 0 if epoch < 6 else 1,
        }
        if epoch == 6:
            h["restart"] = True
        history.append(h)
    if task == "classification":
        test = {"accuracy": 0.9722, "f1": 0.9718, "roc_auc": 0.9991}
    else:
        test = {"r2": 0.4821, "rmse": 53.1}
    card = {
        "name": "fake",
        "version": 1,
        "task": task,
        "family": best["family"],
        "params": json.loads(best["params"]),
        "metric": metric,
        "features": [f"pixel_{i}" for i in range(64)],
        "classes": list(range(10)) if task == "classification" else None,
        "metrics": {"test": test, "val": {metric: 0.9691}},
        "train": {"workers": 2, "use_gpu": False, "epochs": 12, "restarts": 1, "wall_s": 31.4},
        "history": history,
        # As the compress stage writes it: the float baseline first in variants; every variant
        # not shipped in rejected, with why.
        "compression": {
            "prune": 0.5,
            "quantize": "int8",
            "max_metric_drop": 0.01,
            "chosen": "pruned+int8",
            "metric": metric,
            "size_bytes_before": 154_000,
            "size_bytes_after": 41_000,
            "metric_before": 0.9722,
            "metric_after": 0.9694,
            "latency_ms_before": 0.21,
            "latency_ms_after": 0.12,
            "rejected": [
                {
                    "variant": "pruned",
                    "metric": 0.9705,
                    "size_bytes": 152_000,
                    "reason": "qualified (accuracy drop 0.0017) but pruned+int8 is smaller (41000 bytes)",
                },
                {
                    "variant": "int8",
                    "metric": 0.9111,
                    "size_bytes": 40_500,
                    "reason": "accuracy drop 0.0611 > max_metric_drop 0.01",
                },
            ],
            "variants": [
                {
                    "variant": "float",
                    "metric": 0.9722,
                    "size_bytes": 154_000,
                    "latency_ms": 0.21,
                    "qualified": True,
                    "reason": None,
                },
                {
                    "variant": "pruned",
                    "metric": 0.9705,
                    "size_bytes": 152_000,
                    "latency_ms": 0.2,
                    "qualified": True,
                    "reason": None,
                },
                {
                    "variant": "int8",
                    "metric": 0.9111,
                    "size_bytes": 40_500,
                    "latency_ms": 0.13,
                    "qualified": False,
                    "reason": "accuracy drop 0.0611 > max_metric_drop 0.01",
                },
                {
                    "variant": "pruned+int8",
                    "metric": 0.9694,
                    "size_bytes": 41_000,
                    "latency_ms": 0.12,
                    "qualified": True,
                    "reason": None,
                },
            ],
        },
        "data": {
            "source": "builtin:digits",
            "rows": 1797,
            "sha256": "ab" * 32,
            "target": "label",
            "summary": {
                "rows": 1797,
                "columns": 64,
                "target": "label",
                "task": task,
                "missing_values": 3,
                "dropped_target_rows": 0,
                "dropped_columns": ["id"],
                "splits": {"train": 1221, "val": 216, "test": 360},
                **(
                    {"class_counts": {str(c): 170 + 3 * c for c in range(10)}}
                    if task == "classification"
                    else {}
                ),
            },
        },
        "search": {"best_score": best[metric], "trials": 9, "wall_s": 41.2, "k": best["k"]},
        "created": "2026-01-01T00:00:00+00:00",
        "automodel_version": "0.1.0",
        "ray_version": "2.60.0",
        "onnx": {"input": "input", "output": "probabilities", "size_bytes": 41_000},
    }
    (run_dir / "artifact").mkdir(exist_ok=True)
    (run_dir / "artifact" / "card.json").write_text(json.dumps(card, indent=1))
    names = [f"pixel_{i}" for i in range(64)]
    scores = [round(abs(math.sin(i * 1.7)) * 0.6, 4) for i in range(64)]
    kept = sorted(range(64), key=lambda i: -scores[i])[:48]
    (run_dir / "features.json").write_text(
        json.dumps(
            {
                "method": "mutual_info",
                "names": names,
                "scores": scores,
                "k": 48,
                "kept": [names[i] for i in sorted(kept)],
                "k_range": [16, 64],
            }
        )
    )
    if task == "classification":
        cm = [
            [30 if i == j else (1 if (i + j) % 7 == 0 else 0) for j in range(10)] for i in range(10)
        ]
        ev = {"task": task, "n": 360, "labels": [str(i) for i in range(10)], "confusion_matrix": cm}
    else:
        ys = [50 + 3 * i for i in range(80)]
        ev = {"task": task, "n": 89, "y_true": ys, "y_pred": [y + 15 * math.sin(y) for y in ys]}
    (run_dir / "evaluation.json").write_text(json.dumps(ev))
    (run_dir / "result.json").write_text(
        json.dumps(
            {"family": best["family"], "metric": metric, "test": test[metric], "wall_s": 88.8}
        )
    )
    (run_dir / "RESULTS.md").write_text(
        "# Benchmark results\n\n<!-- begin:serving -->\n## Serving: requests/s and p99 latency\n\n"
        "_2026-01-01, x86_64 2 cores_\n\n| server | req/s | p99 ms |\n|---|---|---|\n"
        "| Ray Serve (HAProxy) | 1,570 | 22 |\n| Flask baseline | 760 | 31 |\n<!-- end:serving -->\n"
    )
    return run_dir
