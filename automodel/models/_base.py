"""The family plug-in: what every model family provides to search, training and export."""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from automodel.spec._space import Domain, default_value


class Family(ABC):
    """A model family, stepped one unit of its fidelity at a time.

    Search drives ``step`` under ASHA (epochs for torch, tree chunks for forests), final training
    calls ``fit``. Subclasses declare their search space and defaults; ``__init__`` only stores.
    """

    name: ClassVar[str]
    kind: ClassVar[str]  # "torch" | "sklearn"
    fidelity: ClassVar[str]  # "epochs" | "trees" | "iterations"
    n_jobs: int = 1  # threads a fit may use; trials get one CPU each
    # takes params["class_weight"] in {None, "balanced"} (searched on imbalanced targets)
    supports_class_weight: ClassVar[bool] = False

    def __init__(
        self,
        task: str,
        n_features: int,
        n_outputs: int,
        params: dict[str, Any] | None = None,
        *,
        image_shape: tuple[int, ...] | None = None,
        seed: int = 0,
        max_steps: int = 20,
    ):
        self.task = task
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.params = {**self.defaults(task), **(params or {})}
        self.image_shape = tuple(image_shape) if image_shape else None
        self.seed = seed
        self.max_steps = max_steps
        self.steps_done_ = 0

    @classmethod
    def for_data(
        cls, data: Any, params: dict[str, Any] | None = None, *, seed: int = 0, max_steps: int = 20
    ) -> Family:
        """An unfitted instance shaped for ``data`` (a ``Dataset``: task, feature and output
        counts, the preprocessor's image shape)."""
        return cls(
            data.task,
            data.n_features,
            data.n_outputs,
            params,
            image_shape=data.preprocessor.image_shape,
            seed=seed,
            max_steps=max_steps,
        )

    def fresh(self) -> Family:
        """An unfitted copy: the same shape, params, seed, horizon and threads."""
        new = type(self)(
            self.task,
            self.n_features,
            self.n_outputs,
            self.params,
            image_shape=self.image_shape,
            seed=self.seed,
            max_steps=self.max_steps,
        )
        new.n_jobs = self.n_jobs
        return new

    # ---- declared by each family -------------------------------------------------------------
    @classmethod
    @abstractmethod
    def space(cls, task: str) -> dict[str, Domain]:
        """Default search space."""

    @classmethod
    def defaults(cls, task: str) -> dict[str, Any]:
        """Parameters used when nothing is searched: the middle of the space, or its fixed value."""
        return {k: default_value(d) for k, d in cls.space(task).items()}

    @classmethod
    def param_names(cls) -> set[str]:
        return set(cls.space("classification")) | set(cls.space("regression"))

    def n_steps(self) -> int:
        """Steps to full fidelity."""
        return self.max_steps

    # ---- fitting -----------------------------------------------------------------------------
    @abstractmethod
    def step(self, X: np.ndarray, y: np.ndarray) -> float | None:
        """Advance one fidelity unit; return the training loss where there is one."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Family:
        while self.steps_done_ < self.n_steps():
            self.step(X, y)
        return self

    # ---- inference ---------------------------------------------------------------------------
    @abstractmethod
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (classification) or predictions (regression), float32."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.predict_raw(X)
        return out.argmax(axis=1) if self.task == "classification" else out.reshape(-1)

    @abstractmethod
    def to_onnx(self) -> tuple[bytes, str]:
        """The model as ONNX bytes, input ``input`` [N, n_features] float32, and its output's name."""


@contextlib.contextmanager
def fit_threads() -> Iterator[None]:
    """One thread for a fit (a search trial; on the driver, an in-process final fit or the
    ensemble's fits), restored afterwards.

    The driver shares its cores with Ray's processes (and other work): OpenMP threads that spin
    while they wait made an epoch of digits 10x slower at load average 14 (1.1-2.6 s with 2
    threads against 0.2-0.3 s with one). A trial owns one CPU beside other trials. Torch's own
    threads are set only when torch is loaded (a family imports it when it is looked up, before
    its fit): a scikit-learn fit never imports it.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        # and every OpenMP / BLAS pool (HistGB, LightGBM, NumPy): torch's setting reaches them
        # only when they share its OpenMP runtime, which depends on which library loaded first
        with threadpool_limits(1):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)
