"""The prediction actor: one ONNX Runtime session per actor, Arrow batches in, predictions out.

Ray Data builds a pool of these (``map_batches(Scorer, ...)``); each loads the model once, from
bytes the driver shipped with the actor's arguments, so the artifact need not sit on storage the
nodes share. A batch comes back with the kept columns, the prediction (null for a bad row), the
class probabilities on request and ``ERROR_COLUMN`` (the reason a row was refused, null for a
good row); the sink splits good rows from bad ones.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pyarrow as pa

from automodel.data import Preprocessor
from automodel.predict._encode import ERROR_COLUMN, BatchEncoder

PREDICTION = "prediction"


def probability_column(label: Any) -> str:
    return f"probability_{label}"


class ModelFiles:
    """What an actor needs of an artifact, as plain values: the ONNX bytes, card and preprocessor."""

    def __init__(self, onnx: bytes, card: dict, preprocess: dict, output: str):
        self.onnx, self.card, self.preprocess, self.output = onnx, card, preprocess, output

    @classmethod
    def of(cls, artifact) -> ModelFiles:
        return cls(
            artifact.onnx_path.read_bytes(),
            artifact.card,
            artifact.preprocessor.to_dict(),
            artifact.output_name,
        )


class BatchScorer:
    """Encode, run, decode one Arrow batch: the prediction actor's work, without Ray.

    ``automodel predict`` on a small input scores in its own process with this (no Ray start);
    the Ray Data path's :class:`Scorer` is this plus Ray's resources and the tally.

    Args:
        model: the artifact's :class:`ModelFiles`.
        keep: input columns copied beside the prediction (the id column, or what was asked).
        probabilities: add one ``probability_<class>`` column a class (classification only).
        cpus: ONNX Runtime's threads.
        use_gpu: the CUDA execution provider when ONNX Runtime has one.
    """

    def __init__(
        self,
        model: ModelFiles,
        keep: list[str],
        probabilities: bool,
        cpus: float = 1.0,
        use_gpu: bool = False,
    ):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Threads from the CPUs Ray gave this actor: more would fight the pool's other actors.
        opts.intra_op_num_threads = max(1, math.ceil(cpus))
        opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if use_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(model.onnx, opts, providers=providers)
        self.output = model.output
        self.encoder = BatchEncoder(Preprocessor.from_dict(model.preprocess))
        self.task = model.card["task"]
        classes = model.card.get("classes")
        self.labels = pa.array(classes) if classes else None
        self.proba_names = [probability_column(c) for c in classes] if classes else []
        self.keep = keep
        self.probabilities = probabilities and self.task == "classification"
        self.provider = self.session.get_providers()[0]

    def __call__(self, batch: pa.Table) -> pa.Table:
        enc = self.encoder.encode(batch)
        n, n_good = batch.num_rows, int(enc.good.sum())
        out = self.session.run([self.output], {"input": enc.X})[0] if n_good else None
        columns = {name: batch.column(name) for name in self.keep}
        scatter = None
        if n_good < n:
            # Positions of the good rows' results; null where the row was refused.
            where = np.full(n, -1, dtype=np.int64)
            where[enc.good] = np.arange(n_good)
            scatter = pa.array(where, mask=~enc.good)
        if self.task == "classification":
            idx = out.argmax(axis=1) if out is not None else np.zeros(0, np.int64)
            preds = self.labels.take(pa.array(idx)) if self.labels is not None else pa.array(idx)
            columns[PREDICTION] = _spread(preds, scatter)
            if self.probabilities:
                proba = out if out is not None else np.zeros((0, len(self.proba_names)), np.float32)
                for j, name in enumerate(self.proba_names):
                    columns[name] = _spread(pa.array(proba[:, j]), scatter)
        else:
            values = out.reshape(-1).astype(np.float64) if out is not None else np.zeros(0)
            columns[PREDICTION] = _spread(pa.array(values), scatter)
        columns[ERROR_COLUMN] = pa.array(enc.reasons, type=pa.string())
        return pa.table(columns)


class Scorer(BatchScorer):
    """Callable class for ``Dataset.map_batches``: a :class:`BatchScorer` on the CPUs (and GPU)
    Ray gave the actor, reporting each batch to the tally.

    Args:
        model: ``[ref]``, an object ref to the artifact's :class:`ModelFiles`.
        keep: input columns copied beside the prediction (the id column, or what was asked).
        probabilities: add one ``probability_<class>`` column a class (classification only).
        tally: the run's :class:`~automodel.predict._tally.Tally` actor (progress and placement).
        use_gpu: run on the CUDA execution provider when the actor got a GPU and ORT has one.
    """

    def __init__(
        self,
        model: list,
        keep: list[str],
        probabilities: bool,
        tally: Any,
        use_gpu: bool = False,
    ):
        import ray

        ctx = ray.get_runtime_context()
        cpus = ctx.get_assigned_resources().get("CPU", 1.0)
        gpu = bool(use_gpu and ray.get_gpu_ids())
        super().__init__(ray.get(model[0]), keep, probabilities, cpus=cpus, use_gpu=gpu)
        self.tally = tally
        self.node = ctx.get_node_id()
        self.key = f"{self.node}:{os.getpid()}"
        tally.started.remote(self.key, self.node, self.provider, cpus)

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = super().__call__(batch)
        good = out.column(ERROR_COLUMN).null_count  # a scored row has no reason
        self.tally.scored.remote(self.key, batch.num_rows, good)
        return out


def _spread(values: pa.Array, scatter: pa.Array | None) -> pa.Array:
    """The good rows' values laid over the whole batch (null at refused rows)."""
    return values if scatter is None else values.take(scatter)
