"""int8 quantization with ONNX Runtime: dynamic for MLPs, static (calibrated) for CNNs.

Dynamic quantization stores int8 weights and quantizes activations on the fly; ONNX Runtime's
dynamic quantizer handles MatMul but not Gemm, which is how the torch exporter writes a Linear,
so Gemms are first rewritten as MatMul + Add. It leaves convolutions in float, so CNNs use static
quantization instead: activation ranges are calibrated on training rows and the graph gets
QLinearConv / QGemm operators (QOperator format, so the integer ops are visible in the file).
Softmax stays float: uint8 probabilities would round away what ``roc_auc`` and callers read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

# Operators that compute in integers: their presence in a graph is the proof it was quantized.
INTEGER_OPS = frozenset(
    {
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "QGemm",
        "DynamicQuantizeMatMul",
        "QLinearAdd",
        "QLinearMul",
    }
)


def integer_ops(onnx_bytes: bytes) -> list[str]:
    """The integer-arithmetic operator types a model contains (sorted, unique)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return sorted({n.op_type for n in model.graph.node} & INTEGER_OPS)


def gemm_to_matmul(onnx_bytes: bytes) -> bytes:
    """Rewrite ``Gemm(x, W, b)`` (alpha = beta = 1, no transA) as ``MatMul(x, W') + b``."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (
            node.op_type == "Gemm"
            and node.input[1] in inits
            and attrs.get("alpha", 1.0) == 1.0
            and attrs.get("beta", 1.0) == 1.0
            and not attrs.get("transA", 0)
        )
        if not plain:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = w.T
        w_name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), w_name))
        product = f"{node.output[0]}_matmul"
        nodes.append(
            helper.make_node(
                "MatMul", [node.input[0], w_name], [product], name=f"{node.name}_MatMul"
            )
        )
        if len(node.input) > 2 and node.input[2]:
            nodes.append(
                helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"
                )
            )
        else:
            nodes.append(
                helper.make_node("Identity", [product], [node.output[0]], name=f"{node.name}_Out")
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model.SerializeToString()


def quantize_dynamic_int8(onnx_bytes: bytes) -> bytes:
    """int8 weights, activations quantized per batch at run time (MatMulInteger)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(gemm_to_matmul(onnx_bytes))
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        return dst.read_bytes()


def quantize_static_int8(onnx_bytes: bytes, calibration: np.ndarray, batch_size: int = 32) -> bytes:
    """int8 weights and activations, activation ranges from ``calibration`` rows (QLinearConv, QGemm)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Rows(CalibrationDataReader):
        def __init__(self, X: np.ndarray):
            self.batches = iter([X[i : i + batch_size] for i in range(0, len(X), batch_size)])

        def get_next(self):
            batch = next(self.batches, None)
            return (
                None if batch is None else {"input": np.ascontiguousarray(batch, dtype=np.float32)}
            )

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(onnx_bytes)
        # Per-tensor weights: on CPU the fastest kernels, and per-channel bought no accuracy on digits.
        # uint8 activations with int8 weights: the combination ORT's x86 kernels are built for.
        quantize_static(
            src,
            dst,
            Rows(calibration),
            quant_format=QuantFormat.QOperator,
            per_channel=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "Gemm", "MatMul", "Relu", "MaxPool"],
        )
        return dst.read_bytes()


class _quiet:
    """Silence the quantizer's "consider pre-processing" warnings on the root logger."""

    def __enter__(self):
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc):
        logging.getLogger().setLevel(self.level)
