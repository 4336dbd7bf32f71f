"""Torch families: an MLP for any table and a small CNN for image-shaped inputs (digits 8x8).

``build_module`` is shared with the Ray Train loop, so a searched trial and the final
data-parallel retrain train exactly the same network, and ``step`` trains it with the same
recipe (:func:`automodel.models._recipe.train_epoch`) the loop uses.
"""

from __future__ import annotations

import copy
import io
import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from automodel.models._base import Family
from automodel.models._recipe import (
    Recipe,
    epoch_batches,
    epoch_generator,
    make_optimizer,
    pick_device,
    to_tensors,
    train_epoch,
)
from automodel.models._torch_space import SUPPORTS_CLASS_WEIGHT, cnn_space, mlp_space
from automodel.spec._models import TrainSpec

__all__ = [
    "CNN",
    "MLP",
    "CNNModule",
    "ExportWrapper",
    "MLPModule",
    "export_onnx",
    "make_optimizer",
    "target_scaling",
]


class MLPModule(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: list[int], dropout: float):
        super().__init__()
        layers, width = [], n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNNModule(nn.Module):
    """Two conv blocks; 2-D on image-shaped inputs, 1-D over the feature vector otherwise."""

    def __init__(self, n_in: int, n_out: int, channels: int, dropout: float, image_shape=None):
        super().__init__()
        two_d = image_shape is not None and len(image_shape) == 2 and math.prod(image_shape) == n_in
        self.shape = (1, *image_shape) if two_d else (1, n_in)
        conv, pool = (nn.Conv2d, nn.MaxPool2d) if two_d else (nn.Conv1d, nn.MaxPool1d)
        self.features = nn.Sequential(
            conv(1, channels, 3, padding=1),
            nn.ReLU(),
            conv(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            pool(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *self.shape)).numel()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(flat, 128),
            nn.ReLU(),
            nn.Linear(128, n_out),
        )

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, *self.shape)))


class ExportWrapper(nn.Module):
    """What goes into model.onnx: probabilities for classification, a flat vector for regression
    (scaled back to target units: torch families train on a standardized target)."""

    def __init__(self, module: nn.Module, task: str, y_mean: float = 0.0, y_std: float = 1.0):
        super().__init__()
        self.module, self.task, self.y_mean, self.y_std = module, task, float(y_mean), float(y_std)

    def forward(self, x):
        out = self.module(x)
        if self.task == "classification":
            return torch.softmax(out, dim=1)
        return out.reshape(-1) * self.y_std + self.y_mean


def target_scaling(task: str, y: np.ndarray) -> tuple[float, float]:
    """(mean, std) a regression target is standardized with; identity for classification."""
    if task == "classification":
        return 0.0, 1.0
    return float(np.mean(y)), float(np.std(y)) or 1.0


def export_onnx(
    module: nn.Module, task: str, n_features: int, y_scaling: tuple[float, float] = (0.0, 1.0)
) -> tuple[bytes, str]:
    """Export a trained module (legacy TorchScript exporter: no onnxscript needed)."""
    output = "probabilities" if task == "classification" else "prediction"
    wrapper = ExportWrapper(module, task, *y_scaling).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (torch.zeros(2, n_features),),
            buf,
            dynamo=False,
            input_names=["input"],
            output_names=[output],
            dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}},
            opset_version=17,
        )
    return buf.getvalue(), output


class _TorchFamily(Family):
    """A torch family trains through the shared recipe (:mod:`automodel.models._recipe`).

    ``train_settings`` (a ``TrainSpec``) gives the schedule, warm-up, clipping and AMP; None
    means the spec's defaults. ``device``: ``auto`` (a GPU Ray reserved for this trial, or any
    GPU outside Ray), ``cpu`` or ``cuda``. Each ``step`` is one epoch of :func:`train_epoch` over
    a schedule ``max_steps`` epochs long; ``last_epoch_`` says how it went (device, lr, recipe).
    """

    kind = "torch"
    fidelity = "epochs"
    train_settings: Any = None
    device: str = "auto"

    def build_module(self) -> nn.Module:
        raise NotImplementedError

    supports_class_weight = SUPPORTS_CLASS_WEIGHT

    def recipe(self, y: np.ndarray | None = None) -> Recipe:
        """The shared recipe for these params; with the training targets ``y``, class weights
        too when ``class_weight`` is ``"balanced"``."""
        recipe = Recipe.from_settings(
            self.params, self.train_settings or TrainSpec(), self.max_steps
        )
        if (
            y is not None
            and self.task == "classification"
            and self.params.get("class_weight") == "balanced"
        ):
            recipe = recipe.balanced_for(y, self.n_outputs)
        return recipe

    def fresh(self) -> _TorchFamily:
        new = super().fresh()
        new.train_settings, new.device = self.train_settings, self.device
        return new

    def _setup(self, y: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        self.recipe_ = self.recipe(y)
        self.device_ = pick_device(self.device)
        self.module_ = self.build_module().to(self.device_)
        self.optimizer_ = self.recipe_.make_optimizer(self.module_)
        self.y_scaling_ = target_scaling(self.task, y)
        self._rows = None  # (source array, X tensor, y tensor): the split, moved once

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        """One epoch of the shared recipe on this family's device."""
        if self.steps_done_ == 0:
            self._setup(y)
        if self._rows is None or self._rows[0] is not X:
            self._rows = (X, *to_tensors(X, y, self.task, self.y_scaling_, self.device_))
        _, Xt, yt = self._rows
        bs = self.recipe_.batch_size
        epoch = self.steps_done_ + 1
        stats = train_epoch(
            self.module_,
            epoch_batches(Xt, yt, bs, epoch_generator(self.seed, epoch), self.device_),
            self.optimizer_,
            self.recipe_,
            task=self.task,
            epoch=epoch,
            steps=math.ceil(len(X) / bs),
            seed=self.seed,
        )
        self.steps_done_ = epoch
        self.last_epoch_ = {
            "lr": stats.lr,
            "device": stats.device,
            "bf16": stats.bf16,
            "recipe": stats.recipe,
        }
        if self.steps_done_ >= self.n_steps():
            self._rows = None  # done: let the device copy go
        return stats.mean_loss()

    def release_rows(self) -> None:
        """Drop the training rows' device copy (a fit that stopped before ``n_steps``)."""
        self._rows = None

    @torch.no_grad()
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        self.module_.eval()
        device = next(self.module_.parameters()).device
        wrapper = ExportWrapper(self.module_, self.task, *self.y_scaling_)
        parts = []
        for start in range(0, max(len(X), 1), 65536):
            xb = torch.from_numpy(np.ascontiguousarray(X[start : start + 65536], dtype=np.float32))
            parts.append(wrapper(xb.to(device)).float().cpu())
        return torch.cat(parts).numpy().astype(np.float32)

    def to_onnx(self) -> tuple[bytes, str]:
        module = self.module_
        if next(module.parameters()).device.type != "cpu":
            module = copy.deepcopy(module).cpu()
        return export_onnx(module, self.task, self.n_features, self.y_scaling_)


class MLP(_TorchFamily):
    name = "mlp"

    @classmethod
    def space(cls, task):
        return mlp_space(task)

    def hidden_sizes(self) -> list[int]:
        h = self.params["hidden"]
        return (
            [int(x) for x in h]
            if isinstance(h, (list, tuple))
            else [int(h)] * int(self.params["layers"])
        )

    def build_module(self) -> nn.Module:
        return MLPModule(
            self.n_features, self.n_outputs, self.hidden_sizes(), float(self.params["dropout"])
        )


class CNN(_TorchFamily):
    name = "cnn"

    @classmethod
    def space(cls, task):
        return cnn_space(task)

    def build_module(self) -> nn.Module:
        return CNNModule(
            self.n_features,
            self.n_outputs,
            int(self.params["channels"]),
            float(self.params["dropout"]),
            self.image_shape,
        )
