"""Cluster: connecting to Ray, job submission, preflight checks."""

from automodel.cluster._runtime import ray_session

__all__ = ["ray_session"]
