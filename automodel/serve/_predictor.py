"""Predictor: an artifact's preprocessing plus its ONNX model, for serving and offline checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automodel.artifact import Artifact, read_artifact


class Predictor:
    """Raw rows in, predictions out, exactly as the served model answers.

    Args:
        artifact: an artifact directory or a loaded :class:`Artifact`.
        threads: ONNX Runtime intra-op threads (size to the replica's CPUs).
    """

    def __init__(self, artifact: str | Path | Artifact, threads: int = 1):
        import onnxruntime as ort

        self.artifact = artifact if isinstance(artifact, Artifact) else read_artifact(artifact)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.artifact.onnx_path), opts, providers=["CPUExecutionProvider"])
        self.output = self.artifact.output_name
        self.task = self.artifact.card["task"]
        self.classes = self.artifact.card.get("classes")

    @property
    def n_features(self) -> int:
        return self.artifact.preprocessor.n_features

    def encode(self, rows: Any) -> np.ndarray:
        return self.artifact.preprocessor.transform(rows)

    def run(self, X: np.ndarray) -> np.ndarray:
        """The model's raw output on encoded rows: probabilities or predictions."""
        return self.session.run([self.output], {"input": np.ascontiguousarray(X, dtype=np.float32)})[0]

    def predict_encoded(self, X: np.ndarray, probabilities: bool = False) -> tuple[list, list | None]:
        out = self.run(X)
        if self.task == "classification":
            idx = out.argmax(axis=1)
            preds = [self.classes[i] for i in idx] if self.classes else idx.tolist()
            return preds, (out.tolist() if probabilities else None)
        return out.reshape(-1).astype(float).tolist(), None

    def predict(self, rows: Any, probabilities: bool = False) -> tuple[list, list | None]:
        """Predictions (class labels or values) and, on request, class probabilities."""
        return self.predict_encoded(self.encode(rows), probabilities)
