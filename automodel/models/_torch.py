"""Torch families: an MLP for any table and a small CNN for image-shaped inputs (digits 8x8).

``build_module`` is shared with the Ray Train loop, so a searched trial and the final
data-parallel retrain train exactly the same network.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import torch
from torch import nn

from automodel.models._base import Family
from automodel.spec._space import Choice, Float, Int


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
            conv(1, channels, 3, padding=1), nn.ReLU(),
            conv(channels, 2 * channels, 3, padding=1), nn.ReLU(), pool(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *self.shape)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, n_out))

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


def make_optimizer(module: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)


def export_onnx(module: nn.Module, task: str, n_features: int, y_scaling: tuple[float, float] = (0.0, 1.0)) -> tuple[bytes, str]:
    """Export a trained module (legacy TorchScript exporter: no onnxscript needed)."""
    output = "probabilities" if task == "classification" else "prediction"
    wrapper = ExportWrapper(module, task, *y_scaling).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (torch.zeros(2, n_features),), buf, dynamo=False, input_names=["input"],
            output_names=[output], dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}}, opset_version=17,
        )
    return buf.getvalue(), output


class _TorchFamily(Family):
    kind = "torch"
    fidelity = "epochs"

    def build_module(self) -> nn.Module:
        raise NotImplementedError

    def _setup(self) -> None:
        torch.manual_seed(self.seed)
        self.module_ = self.build_module()
        self.optimizer_ = make_optimizer(self.module_, self.params.get("optimizer", "adamw"),
                                         float(self.params["lr"]), float(self.params["weight_decay"]))
        self.loss_fn_ = nn.CrossEntropyLoss() if self.task == "classification" else nn.MSELoss()
        self.rng_ = np.random.default_rng(self.seed)
        self.y_scaling_ = (0.0, 1.0)

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        """One epoch of minibatch gradient descent."""
        if self.steps_done_ == 0:
            self._setup()
            self.y_scaling_ = target_scaling(self.task, y)
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        if self.task == "classification":
            yt = torch.from_numpy(y.astype(np.int64))
        else:
            mean, std = self.y_scaling_
            yt = torch.from_numpy(((y - mean) / std).astype(np.float32))
        bs = int(self.params["batch_size"])
        order = torch.from_numpy(self.rng_.permutation(len(X)))
        self.module_.train()
        total = 0.0
        for start in range(0, len(X), bs):
            idx = order[start : start + bs]
            out = self.module_(Xt[idx])
            target = yt[idx]
            loss = self.loss_fn_(out if self.task == "classification" else out.reshape(-1), target)
            self.optimizer_.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_.step()
            total += loss.item() * len(idx)
        self.steps_done_ += 1
        return total / len(X)

    @torch.no_grad()
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        self.module_.eval()
        wrapper = ExportWrapper(self.module_, self.task, *self.y_scaling_)
        return wrapper(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy().astype(np.float32)

    def to_onnx(self) -> tuple[bytes, str]:
        return export_onnx(self.module_, self.task, self.n_features, self.y_scaling_)

    @classmethod
    def _common_space(cls):
        return {
            "lr": Float(3e-4, 3e-2, log=True),
            "weight_decay": Float(1e-6, 1e-2, log=True),
            "batch_size": Choice((64, 128)),
            "dropout": Float(0.0, 0.3),
        }


class MLP(_TorchFamily):
    name = "mlp"

    @classmethod
    def space(cls, task):
        return {"hidden": Choice((128, 256, 512)), "layers": Int(1, 3), **cls._common_space()}

    def hidden_sizes(self) -> list[int]:
        h = self.params["hidden"]
        return [int(x) for x in h] if isinstance(h, (list, tuple)) else [int(h)] * int(self.params["layers"])

    def build_module(self) -> nn.Module:
        return MLPModule(self.n_features, self.n_outputs, self.hidden_sizes(), float(self.params["dropout"]))


class CNN(_TorchFamily):
    name = "cnn"

    @classmethod
    def space(cls, task):
        return {"channels": Choice((16, 32, 64)), **cls._common_space()}

    def build_module(self) -> nn.Module:
        return CNNModule(self.n_features, self.n_outputs, int(self.params["channels"]),
                         float(self.params["dropout"]), self.image_shape)
