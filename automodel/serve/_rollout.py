"""`automodel rollout NEW_ARTIFACT --app NAME`: shadow, canary steps, then promote or roll back.

The driver changes only the running deployment's ``user_config`` (Serve reconfigures replicas in
place: no restart, no dropped request): ``rollout = {candidate, weight, step, collector}`` puts the
new version beside the stable one in every replica (see :mod:`automodel.serve._canary`), then each
step raises its weight; promotion makes it ``artifact`` (the old version is dropped), a rollback
removes ``rollout``. Replicas report counts, latencies and agreement to a :class:`Collector` actor;
the driver compares the two versions about once a second and writes every step and decision to
the record file (``rollout.json``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray
from pydantic import BaseModel, Field

from automodel.errors import AutomodelError
from automodel.serve._canary import COLLECTOR_NAMESPACE, collector_name
from automodel.serve._settings import DEPLOYMENT, IMPORT_PATH

DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)


class RolloutError(AutomodelError):
    """The rollout cannot start as asked (no such app, an incompatible new version)."""


class Thresholds(BaseModel):
    """When a comparison rolls the candidate back."""

    max_error_rate: float = Field(0.01, ge=0, le=1)  # candidate failures where stable succeeded
    max_latency_ratio: float = Field(2.0, gt=0)  # candidate p50 and p99 over stable's
    min_agreement: float = Field(0.9, ge=0, le=1)  # share of equal predictions on the same rows
    min_requests: int = Field(50, ge=1)  # candidate requests before a window is judged
    # Latency differences under this never roll back: on a sub-millisecond model, which version
    # runs first on a request (cold caches) alone moves p50 by ~0.1 ms, i.e. x2.
    latency_floor_ms: float = Field(1.0, ge=0)
    # The same for p99, wider: the version answering clients queues behind batches and other
    # requests, and a sub-millisecond model's p99 then moves by 1-2 ms between two windows of the
    # same model (a good version rolled back at x2.9 on 1.77 vs 0.60 ms in a 2 s window).
    tail_floor_ms: float = Field(5.0, ge=0)


class Comparison(BaseModel):
    """One window of one step: both versions on the same requests."""

    requests: int
    candidate_requests: int
    error_rate: float
    stable_p50_ms: float | None
    stable_p99_ms: float | None
    candidate_p50_ms: float | None
    candidate_p99_ms: float | None
    p50_ratio: float | None
    p99_ratio: float | None
    agreement: float | None
    compared: int

    def line(self) -> str:
        def f(v, fmt):
            return "n/a" if v is None else format(v, fmt)

        return (
            f"{self.candidate_requests} candidate requests, errors {self.error_rate:.1%}, "
            f"p50 {f(self.candidate_p50_ms, '.2f')} vs {f(self.stable_p50_ms, '.2f')} ms "
            f"(x{f(self.p50_ratio, '.2f')}), p99 {f(self.candidate_p99_ms, '.2f')} vs "
            f"{f(self.stable_p99_ms, '.2f')} ms (x{f(self.p99_ratio, '.2f')}), "
            f"agreement {f(self.agreement, '.1%')} of {self.compared} predictions"
        )


class Step(BaseModel):
    phase: str  # shadow | canary
    weight: float  # percent of requests the candidate answers
    started: float
    comparison: Comparison | None = None


class RolloutRecord(BaseModel):
    """What ``rollout.json`` holds: every step and the decision."""

    app: str
    stable: dict[str, str]  # artifact, version
    candidate: dict[str, str]
    thresholds: Thresholds
    step_seconds: float
    phase: str = "starting"  # shadow | canary | promoted | rolled back
    weights: dict[str, float] = {}
    steps: list[Step] = []
    decision: str | None = None
    reason: str | None = None
    updated: float = 0.0

    def save(self, path: Path) -> None:
        self.updated = time.time()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        os.replace(tmp, path)


# ---- the collector ---------------------------------------------------------------------------------
@ray.remote(num_cpus=0)
class Collector:
    """Sums what the replicas report, per step; the driver reads it."""

    def __init__(self) -> None:
        self.steps: dict[int, dict[str, Any]] = {}
        self.errors: dict[int, str] = {}  # a replica could not load the candidate

    def add(self, step: int, part: dict[str, Any]) -> None:
        s = self.steps.setdefault(
            step,
            {
                "stable": {"requests": 0, "errors": 0, "latencies_ms": []},
                "candidate": {"requests": 0, "errors": 0, "latencies_ms": []},
                "agree": 0,
                "compared": 0,
            },
        )
        for v in ("stable", "candidate"):
            s[v]["requests"] += part[v]["requests"]
            s[v]["errors"] += part[v]["errors"]
            s[v]["latencies_ms"].extend(
                part[v]["latencies_ms"][: 50_000 - len(s[v]["latencies_ms"])]
            )
        s["agree"] += part["agree"]
        s["compared"] += part["compared"]

    def load_failed(self, step: int, message: str) -> None:
        self.errors.setdefault(step, message)

    def summary(self, step: int) -> dict[str, Any] | None:
        return self.steps.get(step)

    def load_error(self, step: int) -> str | None:
        return self.errors.get(step)


def compare(summary: dict[str, Any] | None) -> Comparison:
    """The comparison of one step's counts (pure: tested on its own)."""
    summary = summary or {
        "stable": {"requests": 0, "errors": 0, "latencies_ms": []},
        "candidate": {"requests": 0, "errors": 0, "latencies_ms": []},
        "agree": 0,
        "compared": 0,
    }
    s, c = summary["stable"], summary["candidate"]

    def pct(lat, q):
        return float(np.percentile(lat, q)) if lat else None

    sp50, sp99 = pct(s["latencies_ms"], 50), pct(s["latencies_ms"], 99)
    cp50, cp99 = pct(c["latencies_ms"], 50), pct(c["latencies_ms"], 99)
    return Comparison(
        requests=s["requests"],
        candidate_requests=c["requests"],
        error_rate=c["errors"] / c["requests"] if c["requests"] else 0.0,
        stable_p50_ms=sp50,
        stable_p99_ms=sp99,
        candidate_p50_ms=cp50,
        candidate_p99_ms=cp99,
        p50_ratio=cp50 / sp50 if cp50 is not None and sp50 else None,
        p99_ratio=cp99 / sp99 if cp99 is not None and sp99 else None,
        agreement=summary["agree"] / summary["compared"] if summary["compared"] else None,
        compared=summary["compared"],
    )


def verdict(c: Comparison, t: Thresholds, final: bool) -> str | None:
    """Why the candidate must be rolled back, or None. Latency is judged at a step's end only
    (``final``): its p99 needs the whole window, errors and agreement do not."""
    if c.candidate_requests < t.min_requests:
        return None
    if c.error_rate > t.max_error_rate:
        return (
            f"error rate {c.error_rate:.1%} > --max-error-rate {t.max_error_rate:.1%} "
            f"({c.candidate_requests} candidate requests)"
        )
    if c.agreement is not None and c.compared >= t.min_requests and c.agreement < t.min_agreement:
        return (
            f"agreement {c.agreement:.1%} < --min-agreement {t.min_agreement:.1%} "
            f"({c.compared} predictions compared)"
        )
    if final:
        for q, ratio, cand, stable, floor in (
            ("p50", c.p50_ratio, c.candidate_p50_ms, c.stable_p50_ms, t.latency_floor_ms),
            ("p99", c.p99_ratio, c.candidate_p99_ms, c.stable_p99_ms, t.tail_floor_ms),
        ):
            if ratio is not None and ratio > t.max_latency_ratio and cand - stable > floor:
                return (
                    f"latency {q} {cand:.2f} ms is x{ratio:.1f} the stable {stable:.2f} ms "
                    f"> --max-latency-ratio {t.max_latency_ratio:g}"
                )
    return None


# ---- the driver ----------------------------------------------------------------------------------
def _connect(address: str | None) -> None:
    from automodel.cluster import prepare_client_auth
    from automodel.cluster._compat import local_only_for

    prepare_client_auth(starting_local=False)
    # Serve's INFO lines ("Connecting to existing Serve app") are not ours to print.
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    with local_only_for(address):
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")


def _current(app: str) -> dict[str, Any]:
    from ray import serve

    if app not in serve.status().applications:
        names = ", ".join(sorted(serve.status().applications)) or "none"
        raise RolloutError(f"--app {app}: no such Serve application here (running: {names})")
    handle = serve.get_deployment_handle(DEPLOYMENT, app_name=app)
    config = handle.rollout_config.remote().result(timeout_s=60)
    if "deploy" not in config:
        raise RolloutError(
            f"--app {app}: deployed by an older automodel (no user_config.deploy); "
            "redeploy it once with this version, then roll out"
        )
    return config


def _apply(app: str, user_config: dict[str, Any]) -> None:
    from automodel.serve._config import apply_config

    deploy = user_config["deploy"]
    apply_config(
        {
            "applications": [
                {
                    "name": app,
                    "route_prefix": deploy["route_prefix"],
                    "import_path": IMPORT_PATH,
                    "args": {"artifact": user_config["artifact"]},
                    "deployments": [
                        {"name": DEPLOYMENT, **deploy["options"], "user_config": user_config}
                    ],
                }
            ]
        }
    )


def _check_compatible(stable, candidate) -> None:
    if stable.card.task != candidate.card.task:
        raise RolloutError(
            f"NEW_ARTIFACT: a {candidate.card.task} model cannot replace a {stable.card.task} one"
        )
    if stable.preprocessor.input_columns != candidate.preprocessor.input_columns:
        raise RolloutError(
            "NEW_ARTIFACT: its input columns differ from the running version's; clients' rows "
            "would not fit: deploy it as a new app instead"
        )


def rollout(
    new_artifact: str,
    *,
    app: str,
    address: str | None = None,
    steps: tuple[float, ...] = DEFAULT_STEPS,
    step_seconds: float = 60.0,
    shadow_seconds: float | None = None,
    thresholds: Thresholds | None = None,
    record: str | Path = "rollout.json",
    out: Callable[[str], None] = print,
) -> int:
    """Run a whole rollout. Returns 0 when promoted, 1 when rolled back.

    ``shadow_seconds``: the shadow window (default ``step_seconds``; 0 starts at the first
    canary step)."""
    from automodel.artifact import read_artifact

    t = thresholds or Thresholds()
    if not steps or any(not 0 < w <= 100 for w in steps) or list(steps) != sorted(steps):
        raise RolloutError(f"--steps: expected rising percentages in (0, 100], got {list(steps)}")
    if steps[-1] != 100:
        steps = (*steps, 100.0)
    candidate = read_artifact(new_artifact)
    _connect(address)
    try:
        base = _current(app)
        stable = read_artifact(base["artifact"])
        _check_compatible(stable, candidate)
        path = Path(record)
        rec = RolloutRecord(
            app=app,
            stable={"artifact": base["artifact"], "version": stable.version},
            candidate={"artifact": str(candidate.source), "version": candidate.version},
            thresholds=t,
            step_seconds=step_seconds,
        )
        name = collector_name(app)
        collector = Collector.options(
            name=name, namespace=COLLECTOR_NAMESPACE, get_if_exists=True, lifetime="detached"
        ).remote()
        try:
            shadow = step_seconds if shadow_seconds is None else shadow_seconds
            return _run(rec, path, base, collector, name, steps, step_seconds, shadow, t, out)
        finally:
            ray.kill(collector)
    finally:
        ray.shutdown()


def _run(rec, path, base, collector, name, steps, step_seconds, shadow_s, t, out) -> int:
    plan = [("shadow", 0.0, shadow_s)] if shadow_s > 0 else []
    plan += [("canary", float(w), step_seconds) for w in steps]
    out(
        f"rollout {rec.app}: version {rec.stable['version']} (stable) -> "
        f"{rec.candidate['version']} (candidate); "
        + (f"shadow {shadow_s:g} s, then " if shadow_s > 0 else "")
        + f"{' -> '.join(f'{w:g}%' for w in steps)}, {step_seconds:g} s a step"
    )
    for i, (phase, weight, seconds) in enumerate(plan):
        step_id = int(time.time() * 1000) * 10 + i  # unique across rollouts of one collector
        _apply(
            rec.app,
            {
                **base,
                "rollout": {
                    "candidate": rec.candidate["artifact"],
                    "weight": weight / 100,
                    "step": step_id,
                    "collector": name,
                },
            },
        )
        step = Step(phase=phase, weight=weight, started=time.time())
        rec.steps.append(step)
        rec.phase, rec.weights = (
            phase,
            {
                rec.stable["version"]: 100 - weight,
                rec.candidate["version"]: weight,
            },
        )
        rec.save(path)
        out(f"  {phase} {weight:g}%: {seconds:g} s")
        deadline = time.time() + seconds
        reason = None
        while True:
            now = time.time()
            final = now >= deadline
            time.sleep(0 if final else min(1.0, deadline - now))
            if final:
                time.sleep(1.0)  # the replicas' last counts (they report every 0.5 s)
            step.comparison = compare(ray.get(collector.summary.remote(step_id)))
            rec.save(path)
            reason = verdict(step.comparison, t, final)
            failed = ray.get(collector.load_error.remote(step_id))
            if failed:
                reason = f"the new version does not load on a replica: {failed[:300]}"
            if reason or final:
                break
        out(f"    {step.comparison.line()}")
        if reason is None and step.comparison.candidate_requests < t.min_requests:
            reason = (
                f"only {step.comparison.candidate_requests} candidate requests in the "
                f"{phase} {weight:g}% step (--min-requests {t.min_requests}): not enough "
                "traffic to judge it"
            )
        if reason:
            _apply(rec.app, base)  # the stable version alone, at once
            rec.phase, rec.decision, rec.reason = "rolled back", "rollback", reason
            rec.weights = {rec.stable["version"]: 100.0}
            rec.save(path)
            out(f"rolled back to version {rec.stable['version']}: {phase} {weight:g}%: {reason}")
            return 1
    promoted = {k: v for k, v in base.items() if k != "rollout"}
    _apply(rec.app, {**promoted, "artifact": rec.candidate["artifact"]})
    rec.phase, rec.decision = "promoted", "promote"
    rec.reason = "every comparison within its threshold at every step"
    rec.weights = {rec.candidate["version"]: 100.0}
    rec.save(path)
    out(
        f"promoted version {rec.candidate['version']}: {rec.reason}; "
        f"version {rec.stable['version']} retired"
    )
    return 0


def status(record: str | Path = "rollout.json", out: Callable[[str], None] = print) -> int:
    """Print the phase, weights and latest comparison of the rollout recorded in ``record``."""
    path = Path(record)
    if not path.is_file():
        raise RolloutError(f"--record {path}: no rollout recorded there (run `automodel rollout`)")
    try:
        rec = RolloutRecord.model_validate(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise RolloutError(f"{path}: not a rollout record ({str(exc).splitlines()[0]})") from None
    out(
        f"app {rec.app}: {rec.phase}  (stable {rec.stable['version']}, candidate "
        f"{rec.candidate['version']}, updated {time.strftime('%H:%M:%S', time.localtime(rec.updated))})"
    )
    out("  weights: " + ", ".join(f"version {v} {w:g}%" for v, w in rec.weights.items()))
    latest = next((s for s in reversed(rec.steps) if s.comparison is not None), None)
    if latest is not None:
        out(f"  latest comparison ({latest.phase} {latest.weight:g}%): {latest.comparison.line()}")
    if rec.decision:
        out(f"  decision: {rec.decision}: {rec.reason}")
    return 0
