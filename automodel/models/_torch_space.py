"""The torch families' search spaces, apart from torch.

A sweep's driver builds its search space from every searched family; with these here it does so
without importing torch (2-5 s on two cores), which it then needs only when it fits a torch model
itself (a torch winner, or a torch member of the ensemble). ``MLP.space`` and ``CNN.space`` return
the same dictionaries.
"""

from __future__ import annotations

from automodel.spec._space import Choice, Domain, Float, Int

# every torch family weights its loss by class when ``class_weight`` is "balanced"
SUPPORTS_CLASS_WEIGHT = True


def common_space() -> dict[str, Domain]:
    return {
        "lr": Float(3e-4, 3e-2, log=True),
        "weight_decay": Float(1e-6, 1e-2, log=True),
        "batch_size": Choice((64, 128)),
        "dropout": Float(0.0, 0.3),
    }


def mlp_space(task: str) -> dict[str, Domain]:
    return {"hidden": Choice((128, 256, 512)), "layers": Int(1, 3), **common_space()}


def cnn_space(task: str) -> dict[str, Domain]:
    return {"channels": Choice((16, 32, 64)), **common_space()}


SPACES = {"mlp": mlp_space, "cnn": cnn_space}
