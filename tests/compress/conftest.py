"""Small trained artifacts, built in-process with the family API (no Ray), shared by the module.

Torch runs single-threaded here: digits-size batches gain nothing from two threads, and on a
shared 2-core machine oversubscribed OpenMP threads make them many times slower.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cli(*args: str):
    """`automodel ARGS` in a subprocess (single-threaded torch)."""
    return run_cli(*args, env=ONE_THREAD)


@contextlib.contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


def make_artifact(
    path: Path, family: str, params: dict, *, epochs: int, source: str = "builtin:digits"
) -> Path:
    """Fit ``family`` on ``source`` and write an artifact exactly as `automodel train` would."""
    from automodel.data import load_dataset
    from automodel.models import FAMILIES
    from automodel.pipeline import build_artifact
    from automodel.spec import spec_from_dict
    from automodel.train import TrainedModel

    spec = spec_from_dict({"name": "digits", "data": {"source": source}})
    data = load_dataset(spec.data)
    model = FAMILIES[family](
        data.task,
        data.n_features,
        data.n_outputs,
        params,
        image_shape=data.preprocessor.image_shape,
        max_steps=epochs,
    )
    model.fit(data.X_train, data.y_train)
    state = model.module_.state_dict() if model.kind == "torch" else None
    trained = TrainedModel(model, family, model.params, {"workers": 1, "epochs": epochs}, [], state)
    build_artifact(spec, data, trained, path)
    return path


@pytest.fixture(scope="session")
def mlp_artifact(tmp_path_factory) -> Path:
    """The issue's MLP: hidden 512-256 on digits."""
    path = tmp_path_factory.mktemp("mlp") / "artifact"
    with one_thread():
        return make_artifact(
            path, "mlp", {"hidden": [512, 256], "lr": 2e-3, "dropout": 0.1}, epochs=8
        )


@pytest.fixture
def mlp_copy(mlp_artifact, tmp_path) -> Path:
    """A private copy to compress in place."""
    return Path(shutil.copytree(mlp_artifact, tmp_path / "artifact"))
