"""RunLedger: a small Ray actor that outlives worker groups.

Rank 0 tells it when a worker group starts (so restarts are counted even before the first
checkpoint exists) and sends it each epoch's row; the driver polls it to print progress while
``trainer.fit()`` blocks.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class RunLedger:
    def __init__(self) -> None:
        self.created = time.time()
        self.attempts: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []

    def begin(self, resumed_after_epoch: int) -> int:
        """Record a worker group's start; returns its attempt number (0 = first, k = k-th restart)."""
        self.attempts.append({"resumed_after_epoch": resumed_after_epoch, "t": time.time()})
        return len(self.attempts) - 1

    def epoch(self, row: dict[str, Any]) -> None:
        self.rows.append({**row, "t": time.time()})  # arrival: epoch intervals include reporting

    def since(self, n_attempts: int, n_rows: int) -> tuple[list[dict], list[dict]]:
        return self.attempts[n_attempts:], self.rows[n_rows:]

    def summary(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "rows": self.rows, "created": self.created}


class ProgressPoller:
    """Prints the ledger's news while ``trainer.fit()`` runs (a daemon thread on the driver)."""

    def __init__(self, ledger: Any, progress: Any, epochs: int, metric: str, every_s: float = 1.0):
        self.ledger, self.progress, self.epochs, self.metric, self.every_s = (
            ledger,
            progress,
            epochs,
            metric,
            every_s,
        )
        self.n_attempts = self.n_rows = 0
        self.stride = max(1, epochs // 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="automodel-train-progress", daemon=True
        )

    def __enter__(self) -> ProgressPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.poll()
            except Exception:  # progress is best effort; the fit's own errors surface on the driver
                pass

    def poll(self) -> None:
        import ray

        attempts, rows = ray.get(self.ledger.since.remote(self.n_attempts, self.n_rows), timeout=10)
        for a in attempts:
            self.n_attempts += 1
            if self.n_attempts > 1:
                self.progress(
                    "train",
                    f"worker group restarted (restart {self.n_attempts - 1}); "
                    f"resuming after epoch {a['resumed_after_epoch']}",
                )
        for row in rows:
            self.n_rows += 1
            e = row["epoch"]
            if e == 1 or e % self.stride == 0 or e == self.epochs or row.get("restarted"):
                self.progress(
                    "train",
                    f"epoch {e}/{self.epochs}  train_loss {row['train_loss']:.4f}  "
                    f"val {self.metric} {row[f'val_{self.metric}']:.4f}  ({row['time_s']:.1f}s)",
                )


__all__ = ["ProgressPoller", "RunLedger"]
