"""What serve_apps/ builds on: the predictor, the request handler, settings and config rendering.

Names load on first use, so `automodel serve --help` (which imports ``automodel.serve._cli``)
does not pay for numpy, pandas and ONNX Runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Predictor": "automodel.serve._predictor",
    "ModelServer": "automodel.serve._server",
    "Reply": "automodel.serve._server",
    "RequestError": "automodel.serve._protocol",
    "deployment_options": "automodel.serve._settings",
    "serve_config": "automodel.serve._settings",
    "serve_settings": "automodel.serve._settings",
    "render_deploy_config": "automodel.serve._config",
    "serve_artifact": "automodel.serve._launch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'automodel.serve' has no attribute {name!r}")
