"""Serving under changing load: autoscaling 1 -> 2 -> 1 replicas, and a replica killed under load.

`automodel serve` with ``serve: {min_replicas: 1, max_replicas: 2, target_ongoing_requests: 1,
upscale_delay_s: 1, downscale_delay_s: 4}`` on a digits MLP; 8 closed-loop connections for the
load (16 closed-loop connections). Records when the second replica starts, how many requests fail
when one of the two replica processes is SIGKILLed (0 expected: HAProxy replays a request that died
with its replica once on the other one), how many were replayed (HAProxy's retry counter), how soon
the replacement replica is back in HAProxy's rotation, and when the replica count falls back after
the load stops.

    python benchmarks/serve_scaling.py [--repeats 3] [--no-write] [--haproxy-log]

``--haproxy-log`` receives HAProxy's access log (every request, UDP syslog) and prints, for each
run, the requests after the kill that HAProxy replayed or ended abnormally: its status, its
termination state (``SH--``: the server closed before answering, ``CD--``: the client went away)
and its retry count, which tell a replay from a dropped connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automodel.serve._launch import replica_pids  # noqa: E402
from automodel.serve._retries import RetryWatch, haproxy_metric  # noqa: E402
from benchmarks._results import table, write_section  # noqa: E402
from benchmarks.serve_throughput import bodies, free_port, make_artifact, stop, wait_answer  # noqa: E402

SETTINGS = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1.0,
    "downscale_delay_s": 20.0,  # no 2 -> 1 flap while the kill is measured
    "max_ongoing_requests": 16,
}


class Load(threading.Thread):
    def __init__(self, url: str, body: bytes, conns: int):
        super().__init__(daemon=True)
        self.url, self.body, self.conns = url, body, conns
        self.results: list[tuple[float, int, str]] = []
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.conns, max_keepalive_connections=self.conns)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def worker():
                while not self.halt.is_set():
                    try:
                        r = await client.post(
                            self.url,
                            content=self.body,
                            headers={"content-type": "application/json"},
                        )
                        self.results.append((time.time(), r.status_code, r.text[:80]))
                    except Exception as exc:
                        self.results.append((time.time(), 0, f"{type(exc).__name__}: {exc}"[:80]))
                        await asyncio.sleep(0.01)

            await asyncio.gather(*(worker() for _ in range(self.conns)))

    def finish(self) -> list[tuple[float, int, str]]:
        self.halt.set()
        self.join(60)
        return self.results


class HaproxyLog(threading.Thread):
    """HAProxy's access log, received as syslog datagrams on a loopback UDP port."""

    # ... 0/0/0/1/1 200 123 - - ---- 17/17/0/0/+1 0/0 "POST /predict HTTP/1.1"
    LINE = re.compile(r" (-?\d+) \d+ \S+ \S+ (\S{4}) \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+ \"(\S+ \S+)")

    def __init__(self) -> None:
        super().__init__(daemon=True, name="haproxy-log")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[tuple[float, str]] = []
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines.append((time.time(), data.decode(errors="replace")))

    def finish(self) -> None:
        self.halt.set()
        self.join(5)
        self.sock.close()

    def unusual(self, since: float) -> list[tuple[float, str, str, str, str]]:
        """(time, status, termination state, retries, request) of each request logged after
        ``since`` that was replayed or did not end normally with a 2xx/4xx."""
        out = []
        for t, line in self.lines:
            m = self.LINE.search(line)
            if t < since or m is None:
                continue
            status, term, retries, request = m.groups()
            if retries not in ("0",) or term != "----" or not status.startswith(("2", "4")):
                out.append((t, status, term, retries, request))
        return out


def wait_for(cond, timeout: float) -> float | None:
    start = time.time()
    while time.time() - start < timeout:
        if cond():
            return time.time() - start
        time.sleep(0.2)
    return None


def scenario(artifact: Path, body: bytes, conns: int, haproxy_log: bool = False) -> dict:
    import subprocess

    port, hp_metrics = free_port(), free_port()
    log = open(Path(tempfile.gettempdir()) / f"bench-scaling-{port}.log", "w")
    env = {**os.environ, "RAY_SERVE_HAPROXY_METRICS_PORT": str(hp_metrics)}
    access = HaproxyLog() if haproxy_log else None
    if access is not None:
        env["RAY_SERVE_HAPROXY_LOG_TARGET"] = f"127.0.0.1:{access.port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "automodel.cli", "serve", str(artifact), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        wait_answer(port, body)
        load = Load(f"http://127.0.0.1:{port}/predict", body, conns=conns)
        metrics_url = f"http://127.0.0.1:{hp_metrics}/metrics"

        def serving(n: int) -> bool:  # n replicas UP in HAProxy's rotation, not just started
            return (haproxy_metric(metrics_url, "haproxy_backend_active_servers") or 0) >= n

        # Two replica processes are not two serving replicas: on a loaded machine the second
        # takes ~18 s to start, and killing the only serving one then fails everything in flight.
        up = wait_for(lambda: len(replica_pids(proc.pid)) == 2 and serving(2), 90)
        time.sleep(3)
        # Kill one of two *serving* replicas: under a slow client the autoscaler can take one
        # away in between (seen at load 25: the only serving replica was killed).
        if wait_for(lambda: serving(2) and len(replica_pids(proc.pid)) == 2, 60) is None:
            # Killing the only serving replica measures nothing about replays (seen at load 30-60).
            load.finish()
            return {
                "skipped": "HAProxy never had two replicas UP: no replica killed",
                "replica_processes": len(replica_pids(proc.pid)),
                "haproxy_up": haproxy_metric(metrics_url, "haproxy_backend_active_servers"),
            }
        victim = replica_pids(proc.pid)[0]
        watch = RetryWatch(metrics_url, period_s=0.1)
        watch.start()
        time.sleep(0.5)
        t_kill = time.time()
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: len(r := replica_pids(proc.pid)) == 2 and victim not in r, 60)
        # "Serves": HAProxy has the replacement UP in its rotation again (2 active servers).
        back = wait_for(lambda: serving(2), 60)
        back = None if back is None else time.time() - t_kill
        time.sleep(max(0.0, 10 - (time.time() - t_kill)))
        results = load.finish()
        retries = watch.stop()
        down = wait_for(lambda: len(replica_pids(proc.pid)) == 1, 120)
        after = [r for r in results if r[0] >= t_kill]
        failed = [r for r in after if r[1] != 200]
        first_ok = min((t for t, s, _ in after if s == 200), default=float("inf")) - t_kill
        logged = [] if access is None else access.unusual(t_kill - 1)
        return {
            "up_s": up,
            "down_s": down,
            "after_kill": len(after),
            "failed": len(failed),
            "failed_pct": 100 * len(failed) / max(1, len(after)),
            "first_ok_s": first_ok,
            "replaced_s": replaced,
            "serving_s": back,
            "retries": retries,
            "failures": [(round(t - t_kill, 2), s, d) for t, s, d in failed][:10],
            "haproxy_log": [(round(t - t_kill, 2), *rest) for t, *rest in logged][:40],
        }
    finally:
        stop(proc)
        if access is not None:
            access.finish()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument(
        "--no-write", action="store_true", help="print the table; leave RESULTS.md as it is"
    )
    p.add_argument(
        "--haproxy-log",
        action="store_true",
        help="log every request in HAProxy and print the replayed or abnormal ones after the kill",
    )
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="serve-scaling-"))
    artifact = make_artifact(tmp)
    card = json.loads((artifact / "card.json").read_text())
    card["serve"].update(SETTINGS)
    (artifact / "card.json").write_text(json.dumps(card))
    body = bodies()[1]
    runs, loads = [], []
    for i in range(args.repeats):
        loads.append(os.getloadavg()[0])
        r = scenario(artifact, body, args.conns, args.haproxy_log)
        loads.append(os.getloadavg()[0])
        print(f"run {i + 1}: {r}", flush=True)
        if "skipped" in r:
            continue
        runs.append(r)
        for t, status, term, retries, request in r["haproxy_log"]:
            print(f"  haproxy {t:+.2f} s status {status} {term} retries {retries} {request}")
    rows = [
        [
            i + 1,
            f"{r['up_s']:.1f}" if r["up_s"] is not None else "never",
            r["after_kill"],
            r["failed"],
            f"{r['failed_pct']:.2f} %",
            int(r["retries"]),
            f"{r['first_ok_s']:.2f}",
            f"{r['replaced_s']:.1f}" if r["replaced_s"] else "never",
            f"{r['serving_s']:.1f}" if r["serving_s"] else "never",
            f"{r['down_s']:.0f}" if r["down_s"] is not None else "never",
        ]
        for i, r in enumerate(runs)
    ]
    body_md = table(
        [
            "run",
            "2 replicas serving after load starts (s)",
            "requests after the kill",
            "failed",
            "failed share",
            "replayed on the other replica (HAProxy retries)",
            "first success after kill (s)",
            "replacement process up (s)",
            "replacement serving (s)",
            "2→1 after load stops (s)",
        ],
        rows,
    )
    notes = (
        "`automodel serve` (HAProxy ingress) with autoscaling "
        f"`{json.dumps(SETTINGS)}`, digits MLP, {args.conns} closed-loop keep-alive connections "
        "(httpx) of 1-row requests; one of the two replica processes SIGKILLed 3 s after the second "
        "replica came up, load kept 10 s past the kill. HAProxy replays a request whose replica "
        "died before answering once on the other replica (`retry-on conn-failure empty-response`, "
        "`retries 1`, redispatch); 'replacement serving' is when HAProxy has two servers UP "
        "again (`haproxy_backend_active_servers`). Load average (1 min) around the runs: "
        f"{min(loads):.1f}-{max(loads):.1f}. Script: `python benchmarks/serve_scaling.py`."
    )
    details = "\n".join(
        f"- run {i + 1}: "
        + ("; ".join(f"{t:+.2f} s {s or ''} {d}" for t, s, d in r["failures"]) or "none")
        for i, r in enumerate(runs)
    )
    body_md += (
        "\n\nFailed requests (seconds after the kill, status, what the client got):\n" + details
    )
    if not args.no_write:
        write_section(
            "serve-scaling", "Serving: autoscaling and a killed replica", notes + "\n\n" + body_md
        )
    print(notes + "\n\n" + body_md)


if __name__ == "__main__":
    main()
