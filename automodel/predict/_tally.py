"""A tiny actor the prediction actors and write tasks report to: live progress and placement.

Fire-and-forget calls (one per batch), so scoring never waits on it; the driver polls it for the
progress line and, at the end, for which nodes ran prediction actors.
"""

from __future__ import annotations


class Tally:
    def __init__(self):
        self.actors: dict[str, dict] = {}
        self.read = 0
        self.good = 0
        self.written = 0

    def started(self, key: str, node: str, provider: str, cpus: float) -> None:
        self.actors[key] = {"node": node, "provider": provider, "cpus": cpus, "rows": 0}

    def scored(self, key: str, rows: int, good: int) -> None:
        self.read += rows
        self.good += good
        if key in self.actors:
            self.actors[key]["rows"] += rows

    def wrote(self, rows: int) -> None:
        self.written += rows

    def snapshot(self) -> dict:
        return {
            "read": self.read,
            "scored": self.good,
            "errors": self.read - self.good,
            "written": self.written,
            "actors": list(self.actors.values()),
        }
