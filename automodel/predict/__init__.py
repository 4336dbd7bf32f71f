"""Batch prediction: score Parquet/CSV files of any size with an artifact, on Ray Data.

    from automodel.predict import predict
    summary = predict("runs/x/artifact", "s3://bucket/day=2026-11-29/", "s3://bucket/scores/",
                      id="customer_id")

The encoding is serving's (``preprocess.json``); rows serving would refuse land in
``OUTPUT/errors/`` with the reason instead of failing the job.
"""

import sys
import types

from automodel.predict._run import PredictSummary, predict

__all__ = ["PredictSummary", "predict"]


class _CallableModule(types.ModuleType):
    """``automodel.predict(...)`` calls :func:`predict`: the package and the function share a
    name, and once the package is imported its module object is what ``automodel.predict`` is."""

    def __call__(self, *args, **kwargs) -> PredictSummary:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
