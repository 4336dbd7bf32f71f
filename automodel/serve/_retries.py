"""Counting HAProxy's replays of requests whose replica died, across HAProxy's reloads.

HAProxy counts retries itself (``haproxy_backend_retry_warnings_total`` on its Prometheus port),
but Ray reloads HAProxy whenever the set of replicas changes, which is exactly what follows a
replica's death, and a reload starts the counters at zero. :class:`RetryWatch` reads the counter
a few times a second and adds up its increases, so a replay just before a reload is kept.
`automodel serve` exports the sum as ``automodel_serve_retries_total`` in Ray's /metrics.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable

RETRY_METRIC = "haproxy_backend_retry_warnings_total"


def haproxy_metric(url: str, name: str) -> float | None:
    """Sum of ``name`` over HAProxy's application backends (None: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and 'proxy="http-' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class RetryWatch(threading.Thread):
    """Polls HAProxy's retry counter every ``period_s`` and adds up its increases.

    Args:
        url: HAProxy's Prometheus URL (``http://127.0.0.1:PORT/metrics``).
        on_retries: called with each increase (e.g. a Prometheus counter's ``inc``).
    """

    def __init__(
        self, url: str, period_s: float = 0.2, on_retries: Callable[[float], None] | None = None
    ):
        super().__init__(daemon=True, name="haproxy-retries")
        self.url, self.period_s, self.on_retries = url, period_s, on_retries
        self.total = 0.0
        self._last: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.period_s):
            self.poll()

    def poll(self) -> None:
        now = haproxy_metric(self.url, RETRY_METRIC)
        if now is None:
            return
        # After a reload the counter starts again from 0: everything it shows is new.
        increase = now - self._last if self._last is not None and now >= self._last else now
        if self._last is None:
            increase = 0.0  # what happened before the watch started is not ours to count
        self._last = now
        if increase > 0:
            self.total += increase
            if self.on_retries is not None:
                self.on_retries(increase)

    def stop(self) -> float:
        self._halt.set()
        self.join(5)
        return self.total
