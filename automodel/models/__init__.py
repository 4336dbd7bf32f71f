"""Model families, by the names a spec uses."""

from __future__ import annotations

from automodel.errors import SpecError
from automodel.models._base import Family
from automodel.models._boosting import LightGBM, XGBoost
from automodel.models._sklearn import SVM, ExtraTrees, HistGB, Linear, RandomForest
from automodel.models._torch import (
    CNN,
    MLP,
    CNNModule,
    ExportWrapper,
    MLPModule,
    export_onnx,
    make_optimizer,
    target_scaling,
)

FAMILIES: dict[str, type[Family]] = {
    f.name: f for f in (MLP, CNN, RandomForest, ExtraTrees, HistGB, Linear, SVM, LightGBM, XGBoost)
}

__all__ = [
    "CNN",
    "CNNModule",
    "ExtraTrees",
    "FAMILIES",
    "Family",
    "HistGB",
    "LightGBM",
    "Linear",
    "MLP",
    "MLPModule",
    "RandomForest",
    "SVM",
    "XGBoost",
    "ExportWrapper",
    "export_onnx",
    "get_family",
    "make_optimizer",
    "target_scaling",
]


def get_family(name: str) -> type[Family]:
    """The family class for a spec name; an unknown name lists the valid ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(
            "model.family", f"unknown family {name!r}; valid: {', '.join(FAMILIES)}"
        ) from None
