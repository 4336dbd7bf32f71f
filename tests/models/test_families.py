"""One suite every model family passes: fit, predict, export to ONNX, reload, same answers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from automodel.data import load_dataset
from automodel.errors import SpecError
from automodel.metrics import score
from automodel.models import FAMILIES, get_family
from automodel.spec import DataSpec, Fixed

THRESHOLDS = {"classification": ("accuracy", 0.9), "regression": ("r2", 0.7)}


@pytest.fixture(scope="module", params=["classification", "regression"])
def data(request):
    source = (
        "builtin:digits"
        if request.param == "classification"
        else "synthetic:regression?rows=1500&features=8&noise=5"
    )
    return load_dataset(DataSpec(source=source))


@pytest.fixture(autouse=True)
def _one_thread():
    # One thread: OpenMP (hist_gb) and torch spin-wait badly when the CI machine is oversubscribed.
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_fit_predict_export_reload(family, data, tmp_path):
    cls = FAMILIES[family]
    model = cls(
        data.task,
        data.n_features,
        data.n_outputs,
        image_shape=data.preprocessor.image_shape,
        max_steps=12,
    ).fit(data.X_train, data.y_train)
    metric, floor = THRESHOLDS[data.task]
    pred = model.predict(data.X_test)
    assert score(metric, data.y_test, pred) >= floor

    onnx_bytes, output = model.to_onnx()
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx_bytes)
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].name == "input"
    out = session.run([output], {"input": data.X_test})[0]
    if data.task == "classification":
        assert out.shape == (len(data.X_test), data.n_outputs)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-4)
        assert (out.argmax(axis=1) == pred).mean() > 0.995
    else:
        np.testing.assert_allclose(out.reshape(-1), pred, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_declares_space_and_fidelity(family):
    cls = FAMILIES[family]
    assert cls.fidelity in ("epochs", "trees", "iterations")
    for task in ("classification", "regression"):
        space = cls.space(task)
        assert space and all(
            not isinstance(d, Fixed) or d.value is not None for d in space.values()
        )
        assert set(cls.defaults(task)) == set(space)


def test_unknown_family_lists_valid_ones():
    with pytest.raises(SpecError, match="valid: mlp, cnn"):
        get_family("xgb")


@pytest.mark.parametrize(
    "family", sorted(f for f, c in FAMILIES.items() if c.supports_class_weight)
)
def test_balanced_class_weight_favours_the_rare_class(family):
    """Families that take class weights: ``class_weight: balanced`` (searched on imbalanced
    targets) moves probability toward the rare class on unseen rows."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=1200,
        n_features=8,
        weights=[0.95, 0.05],
        flip_y=0.02,
        class_sep=0.5,
        random_state=0,
    )
    X = X.astype(np.float32)
    rare = {}
    for weight in (None, "balanced"):
        cls = FAMILIES[family]
        params = {**cls.defaults("classification"), "class_weight": weight}
        model = cls("classification", 8, 2, params, max_steps=5).fit(X[:900], y[:900])
        rare[weight] = float(model.predict_raw(X[900:])[:, 1].mean())
    assert rare["balanced"] > 1.2 * rare[None], rare
