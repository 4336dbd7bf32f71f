"""Exceptions raised by automodel.

Every user-facing problem is an :class:`AutomodelError`; the CLI prints its message on one line
and exits 2. They keep their arguments in ``args`` so they pickle cleanly: Ray ships exceptions
between processes.
"""

from __future__ import annotations


class AutomodelError(Exception):
    """Base class of every error automodel raises for a user's mistake or an environment limit."""

    exit_code = 2


class SpecError(AutomodelError):
    """The spec is malformed: ``key`` names the path (``search.num_samples``)."""

    def __init__(self, key: str, message: str):
        super().__init__(key, message)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"spec error: {where}{self.message}"


class DataError(AutomodelError):
    """The data cannot be loaded or used as asked."""


class ArtifactError(AutomodelError):
    """An artifact directory is missing, incomplete or corrupt."""


class ResourceError(AutomodelError):
    """The spec asks for resources the cluster does not have and cannot get."""


class SearchError(AutomodelError):
    """A sweep cannot start, resume or finish."""


class TrainingError(AutomodelError):
    """Training cannot start, or failed more often than ``train.max_failures`` allows."""


class ClusterError(AutomodelError):
    """A Ray cluster cannot be reached, refuses us (authentication), or rejects a job."""
