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


def start_ledger() -> Any:
    """A :class:`RunLedger` actor on the driver's node, as Ray Train's controller is, so it
    outlives a lost worker node. Hard affinity: a soft one put this 0-CPU actor on another node 5
    times in 8 (Ray 2.60)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0, scheduling_strategy=here)(RunLedger).remote()


def epoch_line(row: dict[str, Any], epochs: int, metric: str) -> str:
    """One progress line for an epoch's row (both the Ray Train and the in-process fit)."""
    val = row.get(f"val_{metric}")
    score = f"  val {metric} {val:.4f}" if val is not None else ""
    return (
        f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}{score}  "
        f"({row['time_s']:.1f}s)"
    )


def stop_line(row: dict[str, Any], epochs: int, metric: str, patience: int | None) -> str:
    """Why training ended before ``epochs``, and which epoch's weights are kept."""
    return (
        f"early stop at epoch {row['epoch']}/{epochs}: val {metric} did not improve for "
        f"{patience} epoch(s); keeping epoch {row['best_epoch']}"
    )


class ProgressPoller:
    """Prints the ledger's news while ``trainer.fit()`` runs (a daemon thread on the driver).

    Before the first worker group reports in, a line every ``wait_every_s`` says the run is
    still waiting for its workers (Ray Train's start-up takes tens of seconds on a small node).
    """

    def __init__(
        self,
        ledger: Any,
        progress: Any,
        epochs: int,
        metric: str,
        *,
        workers: int = 1,
        patience: int | None = None,
        every_s: float = 1.0,
        wait_first_s: float = 3.0,
        wait_every_s: float = 10.0,
    ):
        self.ledger, self.progress, self.epochs, self.metric = ledger, progress, epochs, metric
        self.workers, self.patience, self.every_s = workers, patience, every_s
        self.n_attempts = self.n_rows = 0
        self.stride = max(1, epochs // 10)
        self.started = time.time()
        self.next_wait = self.started + wait_first_s
        self.wait_every_s = wait_every_s
        self.workers_up_s: float | None = None
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
        now = time.time()
        if self.n_attempts == 0 and not attempts and now >= self.next_wait:
            self.progress(
                "train",
                f"waiting for {self.workers} Ray Train worker(s) to start "
                f"({now - self.started:.0f}s so far)",
            )
            self.next_wait = now + self.wait_every_s
        for a in attempts:
            self.n_attempts += 1
            if self.n_attempts == 1:
                self.workers_up_s = a["t"] - self.started
                if self.workers_up_s > 3:
                    self.progress("train", f"workers started after {self.workers_up_s:.0f}s")
            else:
                self.progress(
                    "train",
                    f"worker group restarted (restart {self.n_attempts - 1}); "
                    f"resuming after epoch {a['resumed_after_epoch']}",
                )
        for row in rows:
            self.n_rows += 1
            e = row["epoch"]
            if (
                e == 1
                or e % self.stride == 0
                or e == self.epochs
                or row.get("restarted")
                or row.get("stopped")
            ):
                self.progress("train", epoch_line(row, self.epochs, self.metric))
            if row.get("stopped"):
                self.progress("train", stop_line(row, self.epochs, self.metric, self.patience))


__all__ = ["ProgressPoller", "RunLedger", "epoch_line", "start_ledger", "stop_line"]
