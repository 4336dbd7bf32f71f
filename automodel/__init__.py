"""automodel: train, optimize and deploy models on Ray."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `automodel.predict(artifact, input, out, ...)` without making `import automodel` load it.
    if name == "predict":
        import importlib

        return importlib.import_module("automodel.predict")
    raise AttributeError(f"module 'automodel' has no attribute {name!r}")
