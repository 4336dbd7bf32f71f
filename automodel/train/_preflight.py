"""Preflight: what ``spec.train`` asks for, checked before any work starts."""

from __future__ import annotations

import os

from automodel.errors import ResourceError, SpecError
from automodel.spec import RuntimeSpec, TrainSpec


def check_train_resources(train: TrainSpec, runtime: RuntimeSpec) -> None:
    """Raise before any work when training cannot get what it asks for.

    On the embedded local Ray (``runtime.address`` null) the machine is all there is, so GPUs and
    CPUs are counted here. On an existing cluster an autoscaler may still add nodes, so only the
    spelling of ``train.resources_per_worker`` is checked.

    Raises:
        SpecError: a resource key Ray would read as a custom resource (``gpu`` for ``GPU``).
        ResourceError: ``train.use_gpu`` without a GPU, or more CPUs than the machine has.
    """
    for key in train.resources_per_worker:
        if key.lower() in ("cpu", "gpu") and key not in ("CPU", "GPU"):
            raise SpecError(
                "train.resources_per_worker",
                f"Ray names these resources 'CPU' and 'GPU' (upper case), got {key!r}",
            )
    if runtime.address is not None:
        return
    # "auto" takes what the machine offers, at least one worker (or the driver's own process)
    workers = train.num_workers if isinstance(train.num_workers, int) else 1
    gpus_each = train.resources_per_worker.get("GPU", 1.0) if train.use_gpu else 0.0
    if gpus_each > 0:
        need, have = workers * gpus_each, _local_gpus()
        if have < need:
            raise ResourceError(
                f"train.use_gpu: true needs {need:g} GPU(s) ({workers} worker(s) x {gpus_each:g}) "
                f"but this machine has {have:g}; set train.use_gpu: false, or set runtime.address to a "
                "Ray cluster with GPU nodes"
            )
    cpus_each = train.resources_per_worker.get("CPU", 1.0)
    need, have = workers * cpus_each, _local_cpus(runtime)
    if need > have:
        raise ResourceError(
            f"train.num_workers: {workers} worker(s) x {cpus_each:g} CPU need {need:g} CPUs but the "
            f"local Ray has {have:g}; lower train.num_workers or train.resources_per_worker.CPU"
        )


def _local_gpus() -> float:
    import ray

    if ray.is_initialized():
        return float(ray.cluster_resources().get("GPU", 0))
    import torch

    return float(torch.cuda.device_count())


def _local_cpus(runtime: RuntimeSpec) -> float:
    import ray

    if ray.is_initialized():
        return float(ray.cluster_resources().get("CPU", 0))
    return float(runtime.num_cpus or os.cpu_count() or 1)


__all__ = ["check_train_resources"]
