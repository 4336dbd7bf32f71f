"""A rollout inside a replica: the stable and the candidate version side by side, compared live.

During `automodel rollout`, each replica holds both versions (``user_config.rollout`` names the
candidate, its traffic share and the step). Every request is answered by one version (the candidate
with probability ``weight``, else the stable one) and then, after the answer has gone, run by the
other one in the background, so both versions see the same requests and their answers can be
compared. A candidate that fails (any non-2xx where the stable version succeeds) is answered by the
stable version: a bad candidate costs clients nothing. Shadow is weight 0.

Counts, latencies and agreement go to the rollout's collector actor (:class:`Collector`) about
twice a second, keyed by the step, where the `automodel rollout` driver reads them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any

import orjson

from automodel.serve._server import ModelServer, Reply

COLLECTOR_NAMESPACE = "automodel"
# Requests whose other-version run is still waiting: past this, comparisons are sampled, so a
# slow candidate in shadow cannot queue unbounded work behind the stable answers.
MAX_BACKLOG = 4
REGRESSION_TOLERANCE = 0.1  # a regression prediction agrees within 10 % relative error
MAX_SAMPLES = 20_000  # latencies kept per version and step


def collector_name(app: str) -> str:
    return f"automodel-rollout-{app}"


class Window:
    """What one replica saw of one version since its last flush."""

    __slots__ = ("requests", "errors", "latencies_ms", "agree", "compared")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies_ms: list[float] = []
        self.agree = 0
        self.compared = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latencies_ms": self.latencies_ms,
        }


def predictions_of(reply: Reply) -> list | None:
    """The predictions in a JSON answer (``/predict``, KServe v1, v2 JSON), else None."""
    if reply.status != 200 or reply.headers.get("content-type") != "application/json":
        return None
    try:
        doc = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if "predictions" in doc:
        return doc["predictions"]
    for out in doc.get("outputs") or ():
        if out.get("name") == "predictions":
            return out.get("data")
    return None


def agreement(a: list, b: list) -> tuple[int, int]:
    """(agreeing, compared) predictions: equal classes, or values within 10 % relative error."""
    agree = 0
    for x, y in zip(a, b, strict=False):
        if isinstance(x, float) or isinstance(y, float):
            try:
                agree += abs(x - y) <= REGRESSION_TOLERANCE * max(abs(y), 1e-9)
            except TypeError:
                pass
        else:
            agree += x == y
    return agree, min(len(a), len(b))


class Canary:
    """The request path of a replica during a rollout.

    Args:
        stable: the version serving today.
        candidate: the new version.
        weight: share of requests the candidate answers (0: shadow).
        step: the rollout step these counts belong to.
        collector: the rollout's collector actor handle (None: count only).
    """

    def __init__(
        self,
        stable: ModelServer,
        candidate: ModelServer,
        weight: float,
        step: int,
        collector: Any = None,
        tally: dict | None = None,
    ):
        self.stable, self.candidate = stable, candidate
        self.tally = tally if tally is not None else {}  # (version, status // 100) -> answers
        self.weight, self.step, self.collector = float(weight), int(step), collector
        self.windows = {"stable": Window(), "candidate": Window()}
        self.backlog = 0
        self._tasks: set[asyncio.Task] = set()
        self._flusher: asyncio.Task | None = None

    # ---- request path ---------------------------------------------------------------------------
    async def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        which, reply = await self._answer(method, path, headers, body)
        key = (getattr(self, which).version, reply.status // 100)
        self.tally[key] = self.tally.get(key, 0) + 1
        return reply

    async def _answer(self, method, path, headers, body) -> tuple[str, Reply]:
        if self._flusher is None and self.collector is not None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        first = "candidate" if self.weight > 0 and random.random() < self.weight else "stable"
        reply, ms = await self._run(first, method, path, headers, body)
        if first == "candidate" and reply.status >= 300:
            # The candidate failed: the stable version answers, and the pair is compared now.
            fallback, fms = await self._run("stable", method, path, headers, body)
            self._count("stable", fallback, fms)
            self._count("candidate", reply, ms, failed=fallback.status < 300)
            return "stable", fallback
        if self.backlog < MAX_BACKLOG:
            self.backlog += 1
            task = asyncio.get_running_loop().create_task(
                self._other(first, reply, ms, method, path, headers, body)
            )
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        else:
            self._count(first, reply, ms)
        return first, reply

    async def _run(self, which: str, method, path, headers, body) -> tuple[Reply, float]:
        server = self.stable if which == "stable" else self.candidate
        t0 = time.perf_counter()
        try:
            reply = await server.handle(method, path, headers, body)
        except Exception as exc:  # handle() answers errors itself; this is a last resort
            reply = Reply(500, f"{type(exc).__name__}".encode(), {})
        return reply, (time.perf_counter() - t0) * 1000

    async def _other(self, first: str, reply: Reply, ms: float, method, path, headers, body):
        try:
            second = "stable" if first == "candidate" else "candidate"
            other, oms = await self._run(second, method, path, headers, body)
            stable, sms = (reply, ms) if first == "stable" else (other, oms)
            cand, cms = (other, oms) if first == "stable" else (reply, ms)
            self._count("stable", stable, sms)
            self._count("candidate", cand, cms, failed=cand.status >= 300 and stable.status < 300)
            a, b = predictions_of(cand), predictions_of(stable)
            if a is not None and b is not None:
                agree, compared = agreement(a, b)
                self.windows["candidate"].agree += agree
                self.windows["candidate"].compared += compared
        finally:
            self.backlog -= 1

    def _count(self, which: str, reply: Reply, ms: float, failed: bool | None = None) -> None:
        w = self.windows[which]
        w.requests += 1
        # The candidate's error: it failed where the stable version did not (a client's bad input
        # is a 4xx from both). The stable version's: a 5xx.
        w.errors += bool(failed) if failed is not None else reply.status >= 500
        if len(w.latencies_ms) < MAX_SAMPLES:
            w.latencies_ms.append(ms)

    # ---- reporting ------------------------------------------------------------------------------
    def take(self) -> dict[str, Any] | None:
        """This replica's counts since the last call (None when nothing happened)."""
        s, c = self.windows["stable"], self.windows["candidate"]
        if not (s.requests or c.requests):
            return None
        part = {
            "stable": s.to_dict(),
            "candidate": c.to_dict(),
            "agree": c.agree,
            "compared": c.compared,
        }
        self.windows = {"stable": Window(), "candidate": Window()}
        return part

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.flush()

    def flush(self) -> None:
        part = self.take()
        if part is not None and self.collector is not None:
            self.collector.add.remote(self.step, part)

    def close(self) -> None:
        """Send what is left and stop reporting (the rollout moved on or ended)."""
        if self._flusher is not None:
            self._flusher.cancel()
        self.flush()
