"""automodel: train, optimize and deploy models on Ray."""

__version__ = "0.1.0"
