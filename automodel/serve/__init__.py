"""What serve_apps/ builds on: the predictor, the request handler, settings and config rendering."""

from automodel.serve._predictor import Predictor
from automodel.serve._protocol import RequestError
from automodel.serve._server import ModelServer, Reply
from automodel.serve._settings import deployment_options, serve_config, serve_settings

__all__ = ["ModelServer", "Predictor", "Reply", "RequestError", "deployment_options", "serve_config",
           "serve_settings"]
