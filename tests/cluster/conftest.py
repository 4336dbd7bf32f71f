"""Fixtures of the cluster tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_nothing():
    """Two nodes that share no disk (the worker in its own mount namespace) and a local S3
    endpoint, started once for the session; skipped, with the reason, where unshare is refused."""
    from tests.cluster import _shared_nothing

    reason = _shared_nothing.why_not()
    if reason is not None:
        pytest.skip(f"shared-nothing cluster: {reason}")
    cluster = _shared_nothing.start()
    yield cluster
    _shared_nothing.stop(cluster)
