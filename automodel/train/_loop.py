"""The per-worker training function: what every Ray Train worker runs, top to bottom.

Set up (threads, device, model, optimizer), resume from the last checkpoint if this worker group
replaces one that died, then one loop over epochs: train on this worker's shard with the shared
recipe (:func:`automodel.models._recipe.train_epoch`, the function search trials train with),
score the validation rows, report (with a checkpoint every ``checkpoint_every`` epochs), stop
early. A refit on train + validation has no validation rows: it runs its epochs and keeps the last.

Every worker ends an epoch with the same validation score (predictions are gathered from all
workers before scoring), so early stopping stops them all at the same epoch and each worker
calls ``ray.train.report`` the same number of times, as Ray Train requires.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from automodel.metrics import score_raw
from automodel.models._recipe import train_epoch, use_bf16
from automodel.train._config import LoopConfig, early_stopping
from automodel.train._data import WorkerRows, shard_audit, train_shard


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any] | None:
    import ray
    import ray.train
    import ray.train.torch
    import torch

    c = LoopConfig(**config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(c.threads)  # a worker owns its CPUs; more threads only fight the others
    device = ray.train.torch.get_device()
    bf16 = use_bf16(c.recipe, device)

    # ---- model: the network the search trained, initialized from the same seed on every worker
    torch.manual_seed(c.seed)
    module = c.family_instance().build_module()
    state = {"epoch": 0, "history": [], "best_score": None, "best_epoch": 0, "bad_epochs": 0}
    saved = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # this worker group replaces one that died: continue, not restart
        state, saved = load_checkpoint(checkpoint)
        module.load_state_dict(saved["model"])
    model = ray.train.torch.prepare_model(module)  # to the device; DDP when world > 1
    optimizer = c.recipe.make_optimizer(model)
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
    best = saved["best"] if saved is not None else None
    attempt = ray.get(c.ledger.begin.remote(state["epoch"])) if rank == 0 else 0

    # ---- data: this worker's share of the training rows (Ray Data), its slice of validation
    rows = WorkerRows(
        train_shard(c, rank, world),  # its Ray Data shard, or its own files (streamed data)
        batch_size=c.worker_batch(world),
        cache=c.cache_shard,
        device=device,
        seed=c.seed,
        rank=rank,
        task=c.task,
        y_scaling=c.y_scaling,
    )
    X_mine = y_val = None
    if c.val is not None:  # a refit on train + validation has no rows left to score
        X_val, y_val = ray.get(c.val)
        mine = np.array_split(np.arange(len(X_val)), world)[rank]
        X_mine = torch.from_numpy(np.ascontiguousarray(X_val[mine], dtype=np.float32)).to(device)
    steps = c.steps_per_epoch(world)
    audit = None
    # A group that replaces one which died after the stopping epoch's checkpoint trains no more.
    first_epoch = c.epochs + 1 if state.get("stopped") else state["epoch"] + 1

    # ---- the loop
    for epoch in range(first_epoch, c.epochs + 1):
        t0 = time.time()
        # the shared recipe: schedule, warm-up, clipping, bf16; dropout reseeded from the epoch
        stats = train_epoch(
            model,
            rows.batches(epoch),
            optimizer,
            c.recipe,
            task=c.task,
            epoch=epoch,
            steps=steps,
            seed=c.seed,
            rank=rank,
        )
        # which rows each worker read: a collective, so every rank calls it
        if epoch == first_epoch:
            audit = shard_audit(rows.seen_rows(), c.train_rows, world, device)
        totals = torch.stack(
            [stats.loss_sum, torch.tensor(float(stats.rows), dtype=torch.float64, device=device)]
        )
        loss_total, rows_total = _sum_over_workers(totals, world)
        train_loss = float(loss_total / max(rows_total, 1.0))
        val_score = None
        if X_mine is not None:
            val_score = _validation_score(model, X_mine, y_val, c, world, bf16)

        # ---- bookkeeping: best weights, early stopping, history (identical on every worker)
        stop = False
        if val_score is not None:
            keep, stop = early_stopping(state, epoch, val_score, c.metric, c.patience)
            if keep:
                best = {
                    k: v.detach().to("cpu", copy=True)
                    for k, v in _unwrap(model).state_dict().items()
                }
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            f"val_{c.metric}": val_score,
            "lr": stats.lr,
            "time_s": round(time.time() - t0, 3),
            "restarted": attempt > 0 and epoch == first_epoch,
        }
        state["history"].append(row)
        state["epoch"] = epoch
        state["stopped"] = stop
        if rank == 0:  # the ledger hears of the stop and the kept epoch, for the progress line
            c.ledger.epoch.remote({**row, "stopped": stop, "best_epoch": state["best_epoch"]})

        # ---- checkpoint: every worker reports on the same epochs; rank 0 writes the files. Metrics
        # reach Ray only with a checkpoint (Train V2), and each report waits for the controller to
        # take the previous one, so epochs without a checkpoint do not report at all.
        if epoch % c.checkpoint_every == 0:
            metrics = {k: v for k, v in row.items() if k != "restarted" and v is not None}
            name = f"checkpoint_epoch{epoch:04d}"
            if rank == 0:
                with tempfile.TemporaryDirectory() as tmp:
                    save_checkpoint(Path(tmp), _unwrap(model), optimizer, best, state)
                    ray.train.report(
                        metrics,
                        checkpoint=ray.train.Checkpoint.from_directory(tmp),
                        checkpoint_dir_name=name,
                    )
            else:
                ray.train.report(metrics, checkpoint_dir_name=name)
        if stop:
            break

    if rank != 0:
        return None
    # Early stopping restores the best epoch's weights. A run that went the distance keeps its
    # last ones (the end of the learning-rate schedule): on digits they scored better on the test
    # split than the epoch a small validation split picks.
    stopped = bool(state.get("stopped"))
    kept = (
        best if stopped else {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}
    )
    # Ray refuses tensors in a return value; numpy arrays travel fine.
    return {
        "state_dict": {k: v.numpy() for k, v in kept.items()},
        "history": state["history"],
        "epochs": state["epoch"],
        "kept_epoch": state["best_epoch"] if stopped else state["epoch"],
        "stopped_early": stopped,
        "shards": audit,
        "device": str(device),
        "bf16": bf16,
        "recipe": c.recipe.describe(),
        "data": "cached" if c.cache_shard else "streamed",
    }


# ---- helpers -----------------------------------------------------------------------------------
def _unwrap(model):
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _sum_over_workers(t, world: int):
    import torch.distributed as dist

    if world > 1:
        dist.all_reduce(t)
    return t.cpu().numpy()


def _validation_score(
    model, X_mine, y_val: np.ndarray, c: LoopConfig, world: int, bf16: bool
) -> float:
    """Each worker predicts its slice of the validation rows; all score the gathered whole."""
    import torch
    import torch.distributed as dist

    model.eval()
    parts = []
    with torch.no_grad(), torch.autocast(X_mine.device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(X_mine), 8192):
            out = model(X_mine[start : start + 8192]).float()
            if c.task == "classification":
                parts.append(torch.softmax(out, dim=1))
            else:
                parts.append(out.reshape(-1) * c.y_scaling[1] + c.y_scaling[0])
    mine = torch.cat(parts).cpu().numpy() if parts else np.zeros((0, c.n_outputs), np.float32)
    if world > 1:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, mine)
        mine = np.concatenate(gathered)
    return score_raw(c.task, c.metric, y_val, mine)


def save_checkpoint(path: Path, module, optimizer, best: dict | None, state: dict) -> None:
    """State dicts only (torch.save, read back with weights_only=True) plus a JSON state file."""
    import torch

    torch.save(
        {"model": module.state_dict(), "optimizer": optimizer.state_dict(), "best": best},
        path / "weights.pt",
    )
    (path / "state.json").write_text(json.dumps(state))


def load_checkpoint(checkpoint) -> tuple[dict, dict]:
    import torch

    with checkpoint.as_directory() as d:
        saved = torch.load(Path(d) / "weights.pt", map_location="cpu", weights_only=True)
        state = json.loads((Path(d) / "state.json").read_text())
    return state, saved


__all__ = ["load_checkpoint", "save_checkpoint", "train_loop_per_worker"]
