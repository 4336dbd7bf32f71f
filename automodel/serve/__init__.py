"""What serve_apps/ builds on: the predictor, request schemas, config rendering."""

from automodel.serve._predictor import Predictor

__all__ = ["Predictor"]
