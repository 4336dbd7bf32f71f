"""A replica SIGKILLed while it holds requests: HAProxy replays each of them on the other replica,
every client gets its 200, and ``automodel_serve_retries_total`` counts the replays.

The requests are written the way most HTTP clients write them (the headers, then the body in a
second write) on keep-alive connections that have answered a request before: the case that failed
2-5 requests per kill in benchmarks/serve_scaling.py (HAProxy replays only a request it holds
whole, and closed the client's connection without an answer instead).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest

from automodel.serve._launch import free_port
from automodel.serve._retries import haproxy_metric
from automodel.spec import Spec
from tests.serve.conftest import Server, altered, digits_rows, make_artifact, slow_graph

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CONNS = 4
ROWS = 32  # a ≈10 KB body: within HAProxy's 16 KiB request buffer, so it can be replayed


def _exchange(sock: socket.socket, port: int, body: bytes, gap_s: float) -> int | str:
    """POST /predict on an open connection, the body ``gap_s`` after the headers: the status, or
    what went wrong."""
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head)
    time.sleep(gap_s)
    sock.sendall(body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return f"connection closed without an answer ({len(data)} bytes)"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in header.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return "connection closed in the middle of the answer"
        rest += chunk
    return int(header.split(b" ", 2)[1])


def _retries_exported(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if "automodel_serve_retries_total" in line and not line.startswith("#")
    )


def test_requests_in_flight_on_a_killed_replica_are_replayed(tmp_path, digits):
    v1, data = make_artifact(
        tmp_path / "v1", Spec(name="digits"), "logistic", {"C": 1.0}, dataset=digits
    )
    # ≈0.5-1.5 s a 32-row request: slow enough to kill a replica while it holds requests
    slow = altered(v1.path, tmp_path / "slow", 1, functools.partial(slow_graph, matmuls=100))
    hp_metrics = free_port()
    server = Server(
        slow,
        "--replicas",
        "2",
        env={"RAY_SERVE_HAPROXY_METRICS_PORT": str(hp_metrics)},
    )
    try:
        haproxy = f"http://127.0.0.1:{hp_metrics}/metrics"
        deadline = time.time() + 120
        while (haproxy_metric(haproxy, "haproxy_backend_active_servers") or 0) < 2:
            assert time.time() < deadline, "HAProxy never had both replicas UP"
            time.sleep(0.5)
        body = json.dumps({"features": digits_rows(data, ROWS)}).encode()
        assert len(body) < 14_000
        t0 = time.time()
        r = httpx.post(f"{server.url}/predict", content=body, timeout=60)
        one = time.time() - t0
        assert r.status_code == 200 and len(r.json()["predictions"]) == ROWS

        statuses: list[int | str | None] = [None] * CONNS
        ready = threading.Barrier(CONNS + 1)

        def client(i: int) -> None:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    first = _exchange(sock, server.port, body, 0.0)  # the connection is reused
                    ready.wait(120)
                    statuses[i] = (
                        _exchange(sock, server.port, body, 0.05) if first == 200 else first
                    )
            except (OSError, threading.BrokenBarrierError) as exc:
                statuses[i] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CONNS)]
        for t in threads:
            t.start()
        ready.wait(120)
        # both replicas hold requests now (HAProxy balances by least connections)
        time.sleep(0.05 + min(0.5, one / 3))
        victim = server.replicas()[0]
        os.kill(victim, signal.SIGKILL)
        for t in threads:
            t.join(120)
        assert statuses == [200] * CONNS, statuses

        # the replays are counted (exported by Ray every second or so)
        deadline, replays = time.time() + 30, 0.0
        while replays < 1 and time.time() < deadline:
            time.sleep(1)
            replays = _retries_exported(server.metrics_url)
        assert replays >= 1, "no replay counted in automodel_serve_retries_total"
        print(f"\n[replay] {CONNS} requests through the kill, {replays:g} replayed, one {one:.2f}s")
    finally:
        server.kill()


def test_haproxy_template_patch_lands_in_rays_template(monkeypatch):
    """The worker hook edits Ray's own HAProxy template by anchors: on a Ray whose template moved
    them, buffering (the replays above) and the header that skips Serve's per-request disconnect
    watch would vanish silently. Each must land once, where it applies."""
    import types

    from ray.serve._private import haproxy

    from automodel.cluster import _compat

    def patched(**env: str) -> str:
        for key in (_compat.BUFFER_ENV, _compat.WATCH_ENV):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        module = types.SimpleNamespace(HAPROXY_CONFIG_TEMPLATE=haproxy.HAPROXY_CONFIG_TEMPLATE)
        _compat._loopback_haproxy(module)
        return module.HAPROXY_CONFIG_TEMPLATE

    template = patched()
    assert template.count(_compat.BUFFER_REQUEST) == 1
    defaults = template.split("\ndefaults\n", 1)[1].split("\nfrontend ", 1)[0]
    assert _compat.BUFFER_REQUEST in defaults  # every HTTP request, before a replica is picked
    assert template.count(_compat.NO_DISCONNECT_WATCH) == 1
    http_backends = template.split("\n{%- for item in backends_with_health_config %}", 1)[1]
    http_backends = http_backends.split("{%- if config.grpc_enabled %}", 1)[0]
    assert _compat.NO_DISCONNECT_WATCH in http_backends
    assert "bind *:" not in template.split("listen stats", 1)[1]  # stats on loopback

    off = patched(**{_compat.BUFFER_ENV: "0", _compat.WATCH_ENV: "1"})
    assert _compat.BUFFER_REQUEST not in off and _compat.NO_DISCONNECT_WATCH not in off
