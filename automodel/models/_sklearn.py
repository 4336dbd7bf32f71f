"""scikit-learn families: random forest, extra trees, histogram gradient boosting,
logistic/ridge, and an RBF support-vector machine.

Each family imports its estimator when it first fits: a trial of logistic regression loads
``sklearn.linear_model``, not the ensembles, SVMs and calibration too (seconds on two cores).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

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
        with warnings.catch_warnings():
            # skl2onnx's SVC converter reads probA_/probB_, deprecated with probability=True
            warnings.filterwarnings("ignore", message="Attribute `prob", category=FutureWarning)
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

    @staticmethod
    def estimators():
        """(classifier, regressor) classes."""
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        return RandomForestClassifier, RandomForestRegressor

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
            classifier, regressor = self.estimators()
            cls = classifier if self.task == "classification" else regressor
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

    def to_onnx(self) -> tuple[bytes, str]:
        """The graph skl2onnx builds, from the trees' arrays (see _forest_onnx: 6-16x faster)."""
        from automodel.models._forest_onnx import forest_to_onnx

        return forest_to_onnx(self.model_, self.n_features, self.task == "classification")


class ExtraTrees(RandomForest):
    """Extremely randomized trees: split thresholds drawn at random, so each tree is cheaper and
    the average smoother than a random forest's; often the stronger of the two on small tables and
    on pixel columns."""

    name = "extra_trees"

    @staticmethod
    def estimators():
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        return ExtraTreesClassifier, ExtraTreesRegressor

    @classmethod
    def space(cls, task):
        return {
            "n_estimators": Int(50, 400, log=True),
            "max_depth": Choice((None, 16, 32)),
            "min_samples_split": Int(2, 10),
            "max_features": Choice(("sqrt", 0.5, 1.0)),
        }


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
            from sklearn.ensemble import (
                HistGradientBoostingClassifier,
                HistGradientBoostingRegressor,
            )

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
        from sklearn.linear_model import LogisticRegression, Ridge

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


class SVM(_SklearnFamily):
    """A support-vector machine with an RBF kernel: SVC (Platt-scaled probabilities) or SVR.

    ``gamma`` is a multiple of scikit-learn's ``"scale"`` (1 / (features x variance)), so one range
    suits any width. SVR fits the standardized target (its epsilon tube is 0.1 of a standard
    deviation), and the scale goes back on at prediction, in the ONNX graph too. Fitting costs
    between n^2 and n^3 in the rows: the default search takes it only on small tables.
    """

    name = "svm"
    fidelity = "iterations"
    # no class weights: Platt scaling fits the probabilities back to the classes' real shares

    @classmethod
    def space(cls, task):
        return {"C": Float(0.1, 100.0, log=True), "gamma": Float(0.1, 10.0, log=True)}

    def n_steps(self) -> int:
        return 1

    def step(self, X, y):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC, SVR

        X = np.asarray(X, dtype=np.float32)
        gamma = float(self.params["gamma"]) / max(1e-12, X.shape[1] * float(X.var()))
        if self.task == "classification":
            svc = SVC(C=float(self.params["C"]), gamma=gamma)
            # Platt scaling on 3-fold decision values, then one SVC on every row (what
            # SVC(probability=True) did before scikit-learn 1.9 deprecated it)
            cv = max(2, min(3, int(np.bincount(np.asarray(y, dtype=np.int64)).min())))
            self.model_ = CalibratedClassifierCV(svc, ensemble=False, cv=cv)
            self.model_.fit(X, y)
        else:
            y = np.asarray(y, dtype=np.float64)
            self.y_scale_ = (float(y.mean()), float(y.std()) or 1.0)
            self.model_ = SVR(C=float(self.params["C"]), gamma=gamma, epsilon=0.1)
            self.model_.fit(X, (y - self.y_scale_[0]) / self.y_scale_[1])
        self.steps_done_ += 1
        return None

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return super().predict_raw(X)
        mean, std = self.y_scale_
        return (self.model_.predict(X) * std + mean).astype(np.float32)

    def to_onnx(self) -> tuple[bytes, str]:
        data, output = super().to_onnx()
        if self.task == "classification":
            return data, output
        return _affine_output(data, output, *reversed(self.y_scale_))


def _affine_output(model: bytes, output: str, scale: float, shift: float) -> tuple[bytes, str]:
    """``model`` with its output ``output`` replaced by ``output x scale + shift``."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    raw = output + "_standardized"
    for node in g.node:
        node.output[:] = [raw if o == output else o for o in node.output]
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(scale, dtype=np.float32), "target_scale"),
            numpy_helper.from_array(np.array(shift, dtype=np.float32), "target_shift"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Mul", [raw, "target_scale"], [raw + "_scaled"]),
            helper.make_node("Add", [raw + "_scaled", "target_shift"], [output]),
        ]
    )
    onnx.checker.check_model(m)
    return m.SerializeToString(), output
