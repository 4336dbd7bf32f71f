"""The accuracy gate: score every variant on the test split, keep the smallest that holds the metric.

Each variant runs through ONNX Runtime exactly as serving will run it, so the number the gate
checks is the number users get. The float model is always a candidate, so nothing worse than the
allowed drop is ever chosen.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automodel.metrics import drop, scores_raw


@dataclass
class Variant:
    """One candidate model.onnx and how it was made; ``evaluate`` fills the measured fields."""

    name: str
    onnx_bytes: bytes
    prune: float = 0.0
    structured: bool = False
    quantize: str = "none"
    method: str | None = None  # "dynamic" | "static" for int8
    params: dict[str, Any] | None = None  # family params when pruning changed the shapes
    state_dict: dict | None = None  # float weights for weights.safetensors; None: the original's
    sparsity: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    metric: float = float("nan")
    drop: float = 0.0
    latency_ms: float = float("nan")
    nonzero_params: int = 0
    integer_ops: list[str] = field(default_factory=list)
    reason: str | None = None  # why the gate rejected it; None = it qualified

    @property
    def size_bytes(self) -> int:
        return len(self.onnx_bytes)

    def summary(self) -> dict[str, Any]:
        """The variant as the card's ``compression.variants`` lists it."""
        return {
            "variant": self.name,
            "prune": self.prune,
            "structured": self.structured,
            "quantize": self.quantize,
            "method": self.method,
            "size_bytes": self.size_bytes,
            "metric": round(self.metric, 6),
            "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
            "drop": round(self.drop, 6),
            "latency_ms": round(self.latency_ms, 4),
            "nonzero_params": self.nonzero_params,
            "sparsity": round(self.sparsity, 4),
            "integer_ops": self.integer_ops,
            "qualified": self.reason is None,
            "reason": self.reason,
        }


def session(onnx_bytes: bytes, threads: int = 1):
    """An ONNX Runtime CPU session configured like a serving replica."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def latency_ms(sess, output: str, x: np.ndarray, repeats: int = 200) -> float:
    """Median wall time of one ``run`` on ``x`` (after a warm-up), in milliseconds."""
    feed = {"input": np.ascontiguousarray(x, dtype=np.float32)}
    for _ in range(max(10, repeats // 10)):
        sess.run([output], feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run([output], feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def nonzero_params(onnx_bytes: bytes) -> int:
    """Non-zero entries of the model's weight tensors (initializers with two or more dimensions)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    return int(
        sum(
            np.count_nonzero(numpy_helper.to_array(t))
            for t in model.graph.initializer
            if len(t.dims) >= 2
        )
    )


def evaluate(
    variant: Variant, X: np.ndarray, y: np.ndarray, *, task: str, metric: str, output: str
) -> Variant:
    """Score ``variant`` on (X, y) through ONNX Runtime; time batch-1 inference."""
    from automodel.compress._quantize import integer_ops

    sess = session(variant.onnx_bytes)
    raw = sess.run([output], {"input": np.ascontiguousarray(X, dtype=np.float32)})[0]
    variant.metrics = scores_raw(task, y, raw)
    variant.metric = variant.metrics[metric]
    variant.latency_ms = latency_ms(sess, output, X[:1])
    variant.nonzero_params = nonzero_params(variant.onnx_bytes)
    variant.integer_ops = integer_ops(variant.onnx_bytes)
    return variant


metric_drop = drop  # how much worse ``after`` is than ``before``, in the metric's units


def select(baseline: Variant, variants: list[Variant], *, metric: str, max_drop: float) -> Variant:
    """Mark each variant qualified or rejected (with its reason); return the one to ship.

    A variant qualifies when it is really quantized (when asked to be) and its test-metric drop
    is at most ``max_drop``. A budget of 0 admits no change to the float model at all: every
    compressed model changes the outputs, so the float model stays and the card shows what each
    variant would have cost. Among the float model and the qualified variants, the smallest
    file wins; ties go to fewer non-zero weights (a magnitude-pruned model over its dense parent).
    """
    for v in variants:
        v.drop = metric_drop(metric, baseline.metric, v.metric)
        if v.quantize == "int8" and not v.integer_ops:
            v.reason = (
                "quantizer produced no integer operators (the model would still run in float)"
            )
        elif max_drop == 0:
            v.reason = f"max_metric_drop is 0: no change to the float model is allowed ({metric} drop {v.drop:.4f})"
        elif v.drop > max_drop:
            v.reason = f"{metric} drop {v.drop:.4f} > max_metric_drop {max_drop:g}"
    candidates = [baseline] + [v for v in variants if v.reason is None]
    order = {id(v): i for i, v in enumerate(candidates)}
    return min(candidates, key=lambda v: (v.size_bytes, v.nonzero_params, order[id(v)]))


def rejection(variant: Variant, chosen: Variant, metric: str) -> dict[str, Any]:
    """The card's ``rejected`` entry for a variant that was not shipped."""
    reason = variant.reason or (
        f"qualified ({metric} drop {variant.drop:.4f}) but {chosen.name} is smaller "
        f"({chosen.size_bytes} bytes)"
    )
    return {
        "variant": variant.name,
        "metric": round(variant.metric, 6),
        "size_bytes": variant.size_bytes,
        "reason": reason,
    }
