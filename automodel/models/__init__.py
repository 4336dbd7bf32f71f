"""Model families, by the names a spec uses.

A family's module is imported when the family is first looked up (``FAMILIES["svm"]``), not when
this package is: torch (2-5 s on two cores) loads for ``mlp`` and ``cnn`` only, scikit-learn's
estimators for theirs. A search trial, the fallback fit of a short budget or a final fit of a
scikit-learn winner so never pays for torch; ``name in FAMILIES`` and iterating the names import
nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from automodel.errors import SpecError
from automodel.models._base import Family
from automodel.models._torch_space import SPACES as TORCH_SPACES
from automodel.models._torch_space import SUPPORTS_CLASS_WEIGHT as TORCH_CLASS_WEIGHT

# name -> (module, class), in the order error messages list them
_WHERE: dict[str, tuple[str, str]] = {
    "mlp": ("automodel.models._torch", "MLP"),
    "cnn": ("automodel.models._torch", "CNN"),
    "random_forest": ("automodel.models._sklearn", "RandomForest"),
    "extra_trees": ("automodel.models._sklearn", "ExtraTrees"),
    "hist_gb": ("automodel.models._sklearn", "HistGB"),
    "logistic": ("automodel.models._sklearn", "Linear"),
    "svm": ("automodel.models._sklearn", "SVM"),
    "lightgbm": ("automodel.models._boosting", "LightGBM"),
    "xgboost": ("automodel.models._boosting", "XGBoost"),
}
# what ``from automodel.models import X`` finds in which module (imported on first use)
_ATTRS: dict[str, str] = {
    **{cls: module for module, cls in _WHERE.values()},
    **dict.fromkeys(
        (
            "CNNModule",
            "ExportWrapper",
            "MLPModule",
            "export_onnx",
            "make_optimizer",
            "target_scaling",
        ),
        "automodel.models._torch",
    ),
}


class _Families(Mapping):
    """The family classes by name; a class's module is imported when it is first looked up."""

    def __getitem__(self, name: str) -> type[Family]:
        module, cls = _WHERE[name]  # KeyError for an unknown name, as a dict
        return getattr(importlib.import_module(module), cls)

    def __contains__(self, name: object) -> bool:
        return name in _WHERE

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)

    def __repr__(self) -> str:
        return f"FAMILIES({', '.join(_WHERE)})"


FAMILIES: Mapping[str, type[Family]] = _Families()


def __getattr__(name: str) -> Any:
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    raise AttributeError(f"module 'automodel.models' has no attribute {name!r}")


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
    "search_space",
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


def search_space(name: str, task: str) -> tuple[dict[str, Any], bool]:
    """Family ``name``'s default search space for ``task``, and whether it takes class weights;
    a torch family's without importing torch (:mod:`._torch_space`)."""
    if name in TORCH_SPACES:
        return TORCH_SPACES[name](task), TORCH_CLASS_WEIGHT
    cls = FAMILIES[name]
    return cls.space(task), cls.supports_class_weight
