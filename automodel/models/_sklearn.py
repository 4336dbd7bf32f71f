"""scikit-learn families: random forest, histogram gradient boosting, logistic/ridge."""

from __future__ import annotations

import math

import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from automodel.models._base import Family
from automodel.spec._space import Choice, Float, Int

TREE_STEPS = 5  # ASHA rungs for tree models: the forest grows in this many chunks


class _SklearnFamily(Family):
    kind = "sklearn"

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            proba = self.model_.predict_proba(X)
            return _full_proba(proba, self.model_.classes_, self.n_outputs)
        return self.model_.predict(X).astype(np.float32)

    def to_onnx(self) -> tuple[bytes, str]:
        _patch_skl2onnx()
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        options = {id(self.model_): {"zipmap": False}} if self.task == "classification" else None
        onx = convert_sklearn(
            self.model_,
            initial_types=[("input", FloatTensorType([None, self.n_features]))],
            options=options,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        names = [o.name for o in onx.graph.output]
        output = "probabilities" if "probabilities" in names else names[0]
        return onx.SerializeToString(), output


def _patch_skl2onnx() -> None:
    """skl2onnx 1.20 passes a Python bool where ONNX wants an int for histogram-GB leaves
    (``nodes_missing_value_tracks_true``); newer onnx rejects it. Cast it, once."""
    from skl2onnx.common import tree_ensemble

    if getattr(tree_ensemble.add_node, "_automodel_patched", False):
        return
    original = tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs
        )

    add_node._automodel_patched = True
    tree_ensemble.add_node = add_node


def _full_proba(proba: np.ndarray, classes: np.ndarray, n: int) -> np.ndarray:
    if proba.shape[1] == n:
        return proba.astype(np.float32)
    out = np.zeros((len(proba), n), dtype=np.float32)
    out[:, classes.astype(int)] = proba
    return out


class RandomForest(_SklearnFamily):
    name = "random_forest"
    fidelity = "trees"
    supports_class_weight = True

    @classmethod
    def space(cls, task):
        return {
            "n_estimators": Int(20, 300, log=True),
            "max_depth": Choice((None, 8, 16, 32)),
            "min_samples_split": Int(2, 10),
            "max_features": Choice(("sqrt", "log2", 0.5)),
        }

    def n_steps(self) -> int:
        return min(TREE_STEPS, self.max_steps, int(self.params["n_estimators"]))

    def step(self, X, y):
        if self.steps_done_ == 0:
            cls = RandomForestClassifier if self.task == "classification" else RandomForestRegressor
            p = {k: v for k, v in self.params.items() if k != "n_estimators"}
            self.model_ = cls(
                warm_start=True, n_estimators=0, random_state=self.seed, n_jobs=self.n_jobs, **p
            )
        self.steps_done_ += 1
        self.model_.n_estimators = math.ceil(
            int(self.params["n_estimators"]) * self.steps_done_ / self.n_steps()
        )
        self.model_.fit(X, y)
        return None


class HistGB(_SklearnFamily):
    name = "hist_gb"
    fidelity = "iterations"
    supports_class_weight = True

    @classmethod
    def space(cls, task):
        return {
            "max_iter": Int(50, 400, log=True),
            "learning_rate": Float(0.02, 0.3, log=True),
            "max_leaf_nodes": Int(8, 64, log=True),
            "l2_regularization": Float(1e-6, 1.0, log=True),
        }

    def n_steps(self) -> int:
        return min(TREE_STEPS, self.max_steps, int(self.params["max_iter"]))

    def step(self, X, y):
        if self.steps_done_ == 0:
            cls = (
                HistGradientBoostingClassifier
                if self.task == "classification"
                else HistGradientBoostingRegressor
            )
            p = {k: v for k, v in self.params.items() if k != "max_iter"}
            self.model_ = cls(warm_start=True, early_stopping=False, random_state=self.seed, **p)
        self.steps_done_ += 1
        self.model_.max_iter = math.ceil(
            int(self.params["max_iter"]) * self.steps_done_ / self.n_steps()
        )
        self.model_.fit(X, y)
        return None


class Linear(_SklearnFamily):
    """Logistic regression for classification, ridge for regression."""

    name = "logistic"
    fidelity = "iterations"
    supports_class_weight = True

    @classmethod
    def space(cls, task):
        if task == "regression":
            return {"alpha": Float(1e-3, 100.0, log=True)}
        return {"C": Float(1e-3, 100.0, log=True), "max_iter": Choice((500,))}

    def n_steps(self) -> int:
        return 1

    def step(self, X, y):
        if self.task == "classification":
            self.model_ = LogisticRegression(
                C=float(self.params["C"]),
                max_iter=int(self.params.get("max_iter", 500)),
                class_weight=self.params.get("class_weight"),
            )
        else:
            self.model_ = Ridge(alpha=float(self.params["alpha"]))
        self.model_.fit(X, y)
        self.steps_done_ += 1
        return None
