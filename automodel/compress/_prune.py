"""Pruning of torch families: global magnitude (sparse weights) and structured (smaller layers).

Magnitude pruning zeroes the smallest weights across every Linear/Conv layer at once
(``torch.nn.utils.prune.global_unstructured``), fine-tunes with the masks in place so the
survivors recover, then makes the masks permanent. The tensors keep their shapes, so dense
kernels and the ONNX file do not shrink; the zeros pay off with sparse kernels or compression.

Structured pruning removes whole hidden neurons (MLP) or conv channels (CNN) ranked by the norm
of their incoming times outgoing weights, and copies the survivors into a smaller module built
by the family itself (new ``hidden`` / ``channels`` params), so every kernel gets cheaper and the
artifact can be rebuilt from its card like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_layers(module: nn.Module) -> list[nn.Module]:
    """Linear and conv layers in forward order (registration order for our families)."""
    return [m for m in module.modules() if isinstance(m, PRUNABLE)]


# ---- magnitude (unstructured) -------------------------------------------------------------------
def magnitude_prune(module: nn.Module, amount: float) -> nn.Module:
    """Mask the ``amount`` smallest-magnitude weights over all layers together (biases kept)."""
    targets = [(layer, "weight") for layer in prunable_layers(module)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=float(amount))
    return module


def make_permanent(module: nn.Module) -> nn.Module:
    """Fold the masks into the weights and drop the pruning hooks (plain ``weight`` tensors again)."""
    for layer in prunable_layers(module):
        if prune.is_pruned(layer):
            prune.remove(layer, "weight")
    return module


def sparsity(module: nn.Module) -> float:
    """Share of zero weights over the prunable layers."""
    weights = [layer.weight.detach() for layer in prunable_layers(module)]
    total = sum(w.numel() for w in weights)
    return float(sum((w == 0).sum().item() for w in weights) / total)


# ---- structured ---------------------------------------------------------------------------------
def shrunk_params(family: Any, amount: float) -> dict[str, Any]:
    """The family params of the pruned model: each hidden width / channel count times (1 - amount)."""

    def keep(n: int) -> int:
        return max(1, int(round(n * (1.0 - amount))))

    if family.name == "mlp":
        return {"hidden": [keep(h) for h in family.hidden_sizes()]}
    if family.name == "cnn":
        return {"channels": keep(int(family.params["channels"]))}
    raise ValueError(f"structured pruning supports the mlp and cnn families, not {family.name!r}")


def shrink_into(old: nn.Module, new: nn.Module) -> nn.Module:
    """Copy ``old``'s most important units into the smaller ``new`` (same layer sequence).

    Each layer keeps as many output units (neurons, channels) as its counterpart in ``new``
    has: the ones with the largest ||incoming|| * ||outgoing|| weight norms. The last layer keeps
    all its outputs. Where a conv stack meets the first Linear, each channel owns a block of the
    flattened input.
    """
    src, dst = prunable_layers(old), prunable_layers(new)
    if [type(m) for m in src] != [type(m) for m in dst]:
        raise ValueError("the pruned module's layers do not match the original's")
    keep_in = None  # indices into the current layer's input units; None = all
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(src, dst)):
            w = a.weight
            if keep_in is not None:
                w = w[:, _expand(keep_in, a, src[i - 1])]
            n_out = b.weight.shape[0]
            if i == len(src) - 1 or n_out == a.weight.shape[0]:
                keep_out = torch.arange(a.weight.shape[0])
            else:
                keep_out = _top_units(a, src[i + 1], n_out)
            w = w[keep_out]
            if w.shape != b.weight.shape:
                raise ValueError(
                    f"layer {i}: pruned weight {tuple(w.shape)} does not fit {tuple(b.weight.shape)}"
                )
            b.weight.copy_(w)
            if a.bias is not None:
                b.bias.copy_(a.bias[keep_out])
            keep_in = keep_out
    return new


def _top_units(layer: nn.Module, following: nn.Module, n: int) -> torch.Tensor:
    """Indices (sorted) of ``layer``'s ``n`` output units with the largest weight norms."""
    units = layer.weight.shape[0]
    incoming = layer.weight.detach().reshape(units, -1).norm(dim=1)
    outgoing = following.weight.detach().reshape(following.weight.shape[0], units, -1)
    score = incoming * outgoing.transpose(0, 1).reshape(units, -1).norm(dim=1)
    return torch.sort(torch.topk(score, n).indices).values


def _expand(keep: torch.Tensor, layer: nn.Module, previous: nn.Module) -> torch.Tensor:
    """Input columns of ``layer`` fed by the kept units of ``previous`` (a channel -> its block)."""
    fan_in = layer.weight.shape[1]
    per_unit = fan_in // previous.weight.shape[0]
    if per_unit == 1:
        return keep
    return (keep[:, None] * per_unit + torch.arange(per_unit)[None, :]).reshape(-1)


# ---- fine-tuning --------------------------------------------------------------------------------
def finetune(
    module: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    params: dict[str, Any],
    y_scaling: tuple[float, float],
    epochs: int,
    seed: int = 0,
    settings: Any = None,
) -> nn.Module:
    """A few epochs of the shared training recipe at the family's learning rate, to recover
    after pruning: the same :func:`~automodel.models._recipe.train_epoch` that search trials and
    the final fit train with, its cosine schedule spread over these epochs without warm-up (the
    weights are already trained) and without weight decay (it would pull survivors to zero).

    ``settings``: the ``TrainSpec`` the model was trained under (clipping, AMP, schedule);
    default: the spec's defaults. Pruning masks stay attached during this loop, so pruned weights
    stay zero. The module stays on the device it came on.
    """
    import math
    from dataclasses import replace

    from automodel.models._recipe import (
        Recipe,
        epoch_batches,
        epoch_generator,
        to_tensors,
        train_epoch,
    )
    from automodel.spec import TrainSpec

    if epochs <= 0:
        return module.eval()
    torch.manual_seed(seed)
    recipe = replace(
        Recipe.from_settings(params, settings or TrainSpec(), epochs),
        weight_decay=0.0,
        warmup_epochs=0,
    )
    device = next(module.parameters()).device
    if task == "classification" and params.get("class_weight") == "balanced":  # as it was trained
        with torch.no_grad():
            n_classes = module.eval()(torch.zeros(2, X.shape[1], device=device)).shape[-1]
        recipe = recipe.balanced_for(y, int(n_classes))
    opt = recipe.make_optimizer(module)
    Xt, yt = to_tensors(X, y, task, y_scaling, device)  # copies: the splits may be read-only
    steps = math.ceil(len(X) / recipe.batch_size)
    for epoch in range(1, epochs + 1):
        batches = epoch_batches(Xt, yt, recipe.batch_size, epoch_generator(seed, epoch), device)
        train_epoch(module, batches, opt, recipe, task=task, epoch=epoch, steps=steps, seed=seed)
    return module.eval()
