"""Compress: prune, fine-tune, int8-quantize; ship only what holds the test metric.

``compress_artifact`` makes the variants a :class:`~automodel.spec.CompressSpec` asks for
(magnitude or structured pruning of torch families, ONNX Runtime int8: dynamic for MLPs, static
for CNNs), scores each on the test split, and writes the smallest one whose metric drop is within
``max_metric_drop`` (else the float model) with the whole comparison in ``card["compression"]``.
"""

from automodel.compress._compress import compress_artifact
from automodel.compress._gate import Variant, metric_drop, select
from automodel.compress._quantize import INTEGER_OPS, integer_ops

__all__ = ["INTEGER_OPS", "Variant", "compress_artifact", "integer_ops", "metric_drop", "select"]
