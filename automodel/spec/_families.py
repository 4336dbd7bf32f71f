"""The model families a spec may name: how each trains and which parameters it tunes.

The spec sits below the models in the pipeline, so it keeps this table instead of importing
``automodel.models`` (which imports the spec's search-space notation). ``tests/spec/test_families.py``
checks it against the registered family classes: a new family is added in both places.
"""

from __future__ import annotations

from typing import Literal, NamedTuple


class FamilyInfo(NamedTuple):
    """What the spec knows of a family: ``torch`` families train with Ray Train, ``sklearn``
    ones (scikit-learn API: forests, boosting, linear) in one process."""

    kind: Literal["torch", "sklearn"]
    params: frozenset[str]


FAMILIES: dict[str, FamilyInfo] = {
    "mlp": FamilyInfo("torch", frozenset({"batch_size", "dropout", "hidden", "layers", "lr", "weight_decay"})),
    "cnn": FamilyInfo("torch", frozenset({"batch_size", "channels", "dropout", "lr", "weight_decay"})),
    "random_forest": FamilyInfo(
        "sklearn", frozenset({"max_depth", "max_features", "min_samples_split", "n_estimators"})
    ),
    "extra_trees": FamilyInfo(
        "sklearn", frozenset({"max_depth", "max_features", "min_samples_split", "n_estimators"})
    ),
    "svm": FamilyInfo("sklearn", frozenset({"C", "gamma"})),
    "hist_gb": FamilyInfo(
        "sklearn", frozenset({"l2_regularization", "learning_rate", "max_iter", "max_leaf_nodes"})
    ),
    "logistic": FamilyInfo("sklearn", frozenset({"C", "alpha", "max_iter"})),
    "lightgbm": FamilyInfo(
        "sklearn",
        frozenset(
            {"colsample_bytree", "learning_rate", "min_child_samples", "n_estimators", "num_leaves",
             "reg_lambda", "subsample"}
        ),
    ),
    "xgboost": FamilyInfo(
        "sklearn",
        frozenset(
            {"colsample_bytree", "learning_rate", "max_depth", "min_child_weight", "n_estimators",
             "reg_lambda", "subsample"}
        ),
    ),
}  # fmt: skip


def uses_torch(families) -> bool:
    """Whether any of ``families`` trains with torch (and so with Ray Train workers)."""
    return any(FAMILIES[f].kind == "torch" for f in families if f in FAMILIES)


def unknown_family(name: str) -> str:
    """The message for a family name that is not one: the nearest name, then every valid one."""
    from automodel.spec._names import did_you_mean

    return (
        f"unknown family {name!r}{did_you_mean(name, list(FAMILIES))}; valid: {', '.join(FAMILIES)}"
    )
