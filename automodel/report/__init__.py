"""Report and tracking: a self-contained ``report.html`` a run directory, MLflow / TensorBoard logging.

Cheap to import (the CLI imports it for every command): plotting is hand-written SVG, and the
modules that need numpy, Ray or MLflow are imported by the functions that use them.
"""

from automodel.report._collect import ReportError, RunData, load_run
from automodel.report._html import REPORT_NAME, render, write_report
from automodel.report._run import finish_run, rank_while_searching, record_features

__all__ = [
    "REPORT_NAME",
    "ReportError",
    "RunData",
    "finish_run",
    "load_run",
    "rank_while_searching",
    "record_features",
    "render",
    "tracking_callbacks",
    "write_report",
]


def tracking_callbacks(spec, metric: str) -> list:
    """Ray Tune callbacks for ``spec.tracking`` (MLflow runs a trial, TensorBoard events)."""
    from automodel.report._tracking import tracking_callbacks as _callbacks

    return _callbacks(spec, metric)
