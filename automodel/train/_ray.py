"""Driver side of data-parallel training: build the Ray Train run, fit, rebuild the fitted family."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from automodel.cluster import ray_session
from automodel.data import Dataset
from automodel.errors import TrainingError
from automodel.metrics import MODES
from automodel.models import FAMILIES, target_scaling
from automodel.progress import Progress
from automodel.spec import Spec
from automodel.storage import filesystem, is_uri, remote_of
from automodel.train._config import LoopConfig
from automodel.train._data import cache_limit_bytes, row_bytes, to_ray_dataset, worker_stream
from automodel.train._ledger import ProgressPoller, start_ledger
from automodel.train._loop import train_loop_per_worker
from automodel.train._result import Refit, TrainedModel

EXPERIMENT = "train"


def fit_ray(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    run_dir: str | Path,
    metric: str,
    progress: Progress,
    workers: int,
    refit: Refit | None = None,
) -> TrainedModel:
    """Train a torch family with Ray Train's TorchTrainer on ``workers`` workers.

    Checkpoints go to ``<run_dir>/train`` (or ``<runtime.storage>/...`` when that is a URI, as a
    multi-node cluster needs); a worker lost mid-run restarts the group from the last one.
    With ``refit``, the rows are train + validation and the run has no validation to stop on.
    """
    with ray_session(spec.runtime):
        return _fit(
            spec,
            dataset,
            family,
            params,
            run_dir=run_dir,
            metric=metric,
            progress=progress,
            world=workers,
            refit=refit,
        )


def _fit(
    spec: Spec,
    dataset: Dataset,
    family: str,
    params: dict[str, Any],
    *,
    run_dir: str | Path,
    metric: str,
    progress: Progress,
    world: int,
    refit: Refit | None,
) -> TrainedModel:
    import ray
    import torch

    # Train V2 by name: `ray.train` picks V1 or V2 when first imported, which may have happened
    # before automodel.cluster set RAY_TRAIN_V2_ENABLED (e.g. through ray.tune).
    from ray.train.v2.api.config import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.v2.api.exceptions import ControllerError, WorkerGroupError
    from ray.train.v2.torch.torch_trainer import TorchTrainer

    t = spec.train
    start = time.time()
    storage = _storage_path(spec, Path(run_dir))
    family_params = FAMILIES[family](dataset.task, dataset.n_features, dataset.n_outputs, params)
    resolved = family_params.params
    X, y = dataset.X_train, dataset.y_train
    if refit is not None:  # the validation rows join the training rows
        X, y = np.concatenate([X, dataset.X_val]), np.concatenate([y, dataset.y_val])
    epochs = refit.epochs if refit else t.epochs
    schedule = max(epochs, (refit.schedule_epochs or epochs) if refit else epochs)
    # the trial's recipe (searched lr, batch size, optimizer) under the spec's train settings
    family_params.train_settings = t
    family_params.max_steps = schedule
    recipe = family_params.recipe(y)  # class weights from the driver's targets (balanced)
    stream = worker_stream(dataset, world, refit=refit is not None)  # streamed: workers read files
    n_rows = stream.total if stream is not None else len(X)
    shard_bytes = n_rows // world * row_bytes(dataset.n_features)
    ledger = start_ledger()  # on this node: it outlives a lost worker node
    config = LoopConfig(
        family=family,
        task=dataset.task,
        n_features=dataset.n_features,
        n_outputs=dataset.n_outputs,
        image_shape=dataset.preprocessor.image_shape,
        params=resolved,
        seed=spec.data.seed,
        metric=metric,
        epochs=epochs,
        recipe=recipe,
        patience=None if refit else t.early_stopping_patience,
        checkpoint_every=t.checkpoint_every,
        threads=max(1, int(t.resources_per_worker.get("CPU", 1))),
        cache_shard=shard_bytes <= cache_limit_bytes(),
        train_rows=n_rows,
        y_scaling=target_scaling(dataset.task, y),
        val=None if refit else ray.put((dataset.X_val, dataset.y_val)),
        ledger=ledger,
        stream=stream,
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=vars(config),
        scaling_config=ScalingConfig(
            num_workers=world,
            use_gpu=t.use_gpu,
            resources_per_worker=dict(t.resources_per_worker) or None,
        ),
        run_config=RunConfig(
            name=EXPERIMENT,
            **_storage(storage),
            worker_runtime_env=_worker_env(config.threads),
            failure_config=FailureConfig(max_failures=t.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=t.keep_checkpoints,
                # a refit has no validation score: keep the latest checkpoints
                checkpoint_score_attribute=None if refit else f"val_{metric}",
                checkpoint_score_order=MODES[metric],
            ),
        ),
        datasets={} if stream is not None else {"train": to_ray_dataset(X, y, world)},
    )
    progress(
        "train",
        f"{family} on {world} Ray Train worker(s){' with GPUs' if t.use_gpu else ''}, "
        f"{'' if refit else 'up to '}{epochs} epochs, checkpoints in {storage}/{EXPERIMENT}",
    )
    # Each ray.train.report waits until the controller has taken the previous one, and the
    # controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default): with short
    # epochs that wait would dominate. Ray propagates the variable to the controller and workers.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    try:
        poller = ProgressPoller(
            ledger, progress, epochs, metric, workers=world, patience=config.patience
        )
        with poller:
            try:
                result = trainer.fit()
            except WorkerGroupError as exc:  # a worker raised or died, more than max_failures times
                raise TrainingError(
                    f"training failed on the workers after {_restarts(ledger)} restart(s) "
                    f"(train.max_failures: {t.max_failures}): {_worker_failures(exc)}"
                ) from exc
            except ControllerError as exc:  # e.g. the worker group could not be scheduled or saved
                raise TrainingError(
                    f"Ray Train's controller failed (not a worker; train.max_failures does not "
                    f"apply): {_root_cause(exc.controller_failure)}"
                ) from exc
        out = result.return_value
        log = ray.get(ledger.summary.remote())
    finally:
        ray.kill(ledger)
    wall = time.time() - start
    epoch_s = _epoch_intervals(log["rows"])

    model = FAMILIES[family](
        dataset.task,
        dataset.n_features,
        dataset.n_outputs,
        resolved,
        image_shape=dataset.preprocessor.image_shape,
        seed=spec.data.seed,
        max_steps=schedule,
    )
    model.module_ = model.build_module()
    model.module_.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in out["state_dict"].items()}
    )
    model.module_.eval()
    model.y_scaling_ = config.y_scaling
    model.steps_done_ = out["epochs"]
    startup = round(log["attempts"][0]["t"] - start, 2) if log["attempts"] else None
    info = {
        "workers": world,
        "use_gpu": t.use_gpu,
        "epochs": out["epochs"],
        "restarts": len(log["attempts"]) - 1,
        "wall_s": round(wall, 2),
        "backend": "ray_train",
        # the rows the workers read (their audit), of the rows available (train + validation
        # after a refit, all of them when streamed)
        "rows_seen": (out["shards"] or {}).get("rows_covered", n_rows),
        "rows_available": n_rows,
        "kept_epoch": out["kept_epoch"],
        "stopped_early": out["stopped_early"],
        "batch_size": recipe.batch_size,
        "optimizer": recipe.optimizer,
        "lr": recipe.lr,
        "lr_schedule": recipe.schedule,
        "recipe": out["recipe"],
        "device": out["device"],
        "bf16": out["bf16"],
        "data": out["data"],
        "shards": out["shards"],
        # fixed cost: from here to the first worker group's start (Ray Train start-up, data)
        "startup_s": startup,
        # the epochs themselves (training, validation, reporting)
        "fit_s": round(sum(epoch_s), 2),
        "epoch_s": round(float(np.median(epoch_s)), 3) if epoch_s else None,
        "overhead_s": round(wall - sum(r["time_s"] for r in log["rows"]), 2),
        "resumed_after_epoch": [a["resumed_after_epoch"] for a in log["attempts"][1:]],
    }
    state = {k: v.detach().cpu() for k, v in model.module_.state_dict().items()}
    history = out["history"]
    kept = next((r for r in history if r["epoch"] == out["kept_epoch"]), None)
    val_score = refit.val_score if refit else (kept or {}).get(f"val_{metric}")
    return TrainedModel(model, family, resolved, info, history, state, val_score)


def _worker_env(threads: int) -> dict | None:
    """OpenMP threads that sleep rather than spin while they wait: a worker with several threads
    shares its node with other workers and tasks, and spinning threads on a busy node made an
    epoch over ten times slower in our measurements (2 threads on 2 shared cores)."""
    if threads < 2:
        return None
    return {"env_vars": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}}


def _epoch_intervals(rows: list[dict]) -> list[float]:
    """Seconds between consecutive epochs' ends (training, scoring and reporting); the first
    epoch of each worker group, which also reads its shard, counts by its own time."""
    out = []
    for prev, row in zip([None, *rows], rows):
        contiguous = prev is not None and row["epoch"] == prev["epoch"] + 1 and not row["restarted"]
        out.append(row["t"] - prev["t"] if contiguous else row["time_s"])
    return out


def _storage_path(spec: Spec, run_dir: Path) -> str:
    """Where Ray Train keeps checkpoints: a folder under runtime.storage when that is a URI (s3://,
    gs://); else the run directory's URI when it is staged for one (`--out s3://...`), so that a
    worker group restarted on another node finds them; else ``run_dir`` itself."""
    storage = spec.runtime.storage
    if is_uri(storage):
        return f"{storage.rstrip('/')}/{spec.name}/{run_dir.name}"
    return remote_of(run_dir) or str(run_dir.resolve())


def _storage(path: str) -> dict[str, Any]:
    """Ray Train's ``storage_path`` and ``storage_filesystem`` for ``path``: a URI goes through
    automodel's own filesystem (small files in one PutObject, as every other write here: an
    S3-compatible store that mishandles an empty multipart upload, moto, would fail Ray's
    storage check)."""
    if not is_uri(path):
        return {"storage_path": path}
    fs, inner = filesystem(path)
    return {"storage_path": inner, "storage_filesystem": fs}


def _restarts(ledger) -> int:
    import ray

    return max(len(ray.get(ledger.summary.remote())["attempts"]) - 1, 0)


def _worker_failures(exc) -> str:
    """Which worker failed and how: ``rank N: <the exception's last line>`` for each."""
    failures = getattr(exc, "worker_failures", None) or {}
    if not failures:
        return _root_cause(exc)
    return "; ".join(f"rank {rank}: {_root_cause(err)}" for rank, err in sorted(failures.items()))


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


__all__ = ["EXPERIMENT", "fit_ray"]
