"""Forests go to ONNX from their trees' arrays: the same answers as skl2onnx's graph, and as
scikit-learn's own predictions, at a fraction of the time (a budgeted run keeps less back)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from automodel.models._forest_onnx import forest_to_onnx

CASES = [
    (RandomForestRegressor, 0),
    (ExtraTreesRegressor, 0),
    (RandomForestClassifier, 2),
    (ExtraTreesClassifier, 4),
]


@pytest.fixture(scope="module")
def X():
    X = np.random.default_rng(0).normal(size=(1500, 6)).astype(np.float32)
    X[:, 2] = np.round(X[:, 2], 1)  # many rows exactly on a split threshold
    return X


def _skl2onnx(model, n_features):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from automodel.models._sklearn import _patch_skl2onnx

    _patch_skl2onnx()
    classifier = hasattr(model, "classes_")
    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}} if classifier else None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString(), "probabilities" if classifier else "variable"


@pytest.mark.parametrize(("estimator", "classes"), CASES, ids=lambda c: getattr(c, "__name__", c))
def test_forest_graph_answers_as_skl2onnx_and_sklearn(estimator, classes, X):
    train, test = X[:1000], X[1000:]
    signal = train[:, 0] + train[:, 2] ** 2
    if classes:
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
        model = estimator(n_estimators=30, class_weight="balanced", random_state=0)
    else:
        y, model = signal, estimator(n_estimators=30, random_state=0)
    model.fit(train, y)

    ours, output = forest_to_onnx(model, X.shape[1], classification=bool(classes))
    theirs, their_output = _skl2onnx(model, X.shape[1])
    got = ort.InferenceSession(ours).run([output], {"input": test})[0]
    want = ort.InferenceSession(theirs).run([their_output], {"input": test})[0]
    np.testing.assert_array_equal(got, want)
    if classes:
        assert output == "probabilities" and got.shape == (len(test), classes)
        np.testing.assert_allclose(got, model.predict_proba(test), atol=1e-5)
        labels = ort.InferenceSession(ours).run(["label"], {"input": test})[0]
        np.testing.assert_array_equal(labels, model.predict(test))
    else:
        np.testing.assert_allclose(got.ravel(), model.predict(test), rtol=1e-5, atol=1e-5)
