"""Gradient-boosting libraries as families: LightGBM (a default) and XGBoost (optional extra).

Both grow their trees in chunks, one chunk a fidelity step (as the forest does), continuing the
booster trained so far, so ASHA can stop a poor configuration after a fraction of its trees.
ONNX export goes through onnxmltools' converters registered with skl2onnx: one graph with a
``probabilities`` output, like every other family.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from automodel.models._sklearn import TREE_STEPS, _SklearnFamily
from automodel.spec._space import Choice, Float, Int


def _require(module: str, install: str) -> Any:
    """Import a library a family needs, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this family needs the {module} package; install it with `{install}`"
        ) from None


class _Boosting(_SklearnFamily):
    """Shared stepping: ``n_estimators`` trees, added in ``n_steps`` chunks."""

    fidelity = "trees"
    supports_class_weight = True

    def n_steps(self) -> int:
        return min(TREE_STEPS, self.max_steps, int(self.params["n_estimators"]))

    def trees_after(self, steps: int) -> int:
        """Trees the booster holds after ``steps`` fidelity steps (``n_estimators`` at the last)."""
        return math.ceil(int(self.params["n_estimators"]) * steps / self.n_steps())

    def _chunk(self) -> int:
        """Trees this step adds, so that the last step ends at ``n_estimators`` exactly."""
        return self.trees_after(self.steps_done_ + 1) - self.trees_after(self.steps_done_)

    def _sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        if self.task != "classification" or self.params.get("class_weight") != "balanced":
            return None
        from sklearn.utils.class_weight import compute_sample_weight

        return compute_sample_weight("balanced", y)

    def _library_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k not in ("n_estimators", "class_weight")}


class LightGBM(_Boosting):
    name = "lightgbm"

    @classmethod
    def space(cls, task):
        return {
            "n_estimators": Int(50, 500, log=True),
            "learning_rate": Float(0.02, 0.3, log=True),
            "num_leaves": Int(8, 128, log=True),
            "min_child_samples": Int(5, 50, log=True),
            "subsample": Float(0.6, 1.0),
            "colsample_bytree": Float(0.5, 1.0),
            "reg_lambda": Float(1e-6, 10.0, log=True),
        }

    def estimator(self, n_estimators: int, **extra: Any) -> Any:
        """The scikit-learn estimator of ``n_estimators`` trees with this family's parameters
        (``extra``: further LightGBM parameters, e.g. a distributed fit's network)."""
        lgb = _require("lightgbm", "pip install lightgbm")
        cls = lgb.LGBMClassifier if self.task == "classification" else lgb.LGBMRegressor
        return cls(
            n_estimators=n_estimators,
            subsample_freq=1,  # subsample only acts with a bagging frequency
            random_state=self.seed,
            n_jobs=self.n_jobs,
            verbose=-1,
            **self._library_params(),
            **extra,
        )

    def step(self, X, y):
        model = self.estimator(self._chunk())
        init = self.model_.booster_ if self.steps_done_ else None
        model.fit(X, y, sample_weight=self._sample_weight(y), init_model=init)
        self.model_ = model
        self.steps_done_ += 1
        return None

    def to_onnx(self) -> tuple[bytes, str]:
        _register_converters()
        return super().to_onnx()


class XGBoost(_Boosting):
    name = "xgboost"

    @classmethod
    def space(cls, task):
        return {
            "n_estimators": Int(50, 500, log=True),
            "learning_rate": Float(0.02, 0.3, log=True),
            "max_depth": Choice((6, 3, 4, 8, 10)),
            "min_child_weight": Float(0.5, 10.0, log=True),
            "subsample": Float(0.6, 1.0),
            "colsample_bytree": Float(0.5, 1.0),
            "reg_lambda": Float(1e-3, 10.0, log=True),
        }

    def estimator(self, n_estimators: int, **extra: Any) -> Any:
        """The scikit-learn estimator of ``n_estimators`` trees with this family's parameters."""
        xgb = _require("xgboost", "pip install 'automodel[xgboost]'")
        cls = xgb.XGBClassifier if self.task == "classification" else xgb.XGBRegressor
        return cls(
            n_estimators=n_estimators,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            **self._library_params(),
            **extra,
        )

    def step(self, X, y):
        model = self.estimator(self._chunk())
        init = self.model_.get_booster() if self.steps_done_ else None
        model.fit(X, y, sample_weight=self._sample_weight(y), xgb_model=init)
        self.model_ = model
        self.steps_done_ += 1
        return None

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            # XGBoost keeps only the classes it saw, indexed 0..k-1 as sklearn's would be
            proba = self.model_.predict_proba(X)
            return _pad(proba, self.model_.classes_, self.n_outputs)
        return self.model_.predict(X).astype(np.float32)

    def to_onnx(self) -> tuple[bytes, str]:
        _register_converters()
        return super().to_onnx()


def _pad(proba: np.ndarray, classes: np.ndarray, n: int) -> np.ndarray:
    if proba.shape[1] == n:
        return proba.astype(np.float32)
    out = np.zeros((len(proba), n), dtype=np.float32)
    out[:, classes.astype(int)] = proba
    return out


def _register_converters() -> None:
    """Teach skl2onnx the LightGBM / XGBoost estimators, with onnxmltools' converters (once)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    onnxmltools = _require("onnxmltools", "pip install onnxmltools")
    from onnxmltools.convert.common.data_types import FloatTensorType  # noqa: F401 (import check)

    if getattr(_register_converters, "done", False):
        return
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import lightgbm as lgb
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            lgb.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=options,
        )
        update_registered_converter(
            lgb.LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
    except ImportError:
        pass
    try:
        import xgboost as xgb
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        update_registered_converter(
            xgb.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
        update_registered_converter(
            xgb.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    except ImportError:
        pass
    del onnxmltools
    _register_converters.done = True
