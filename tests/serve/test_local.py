"""`automodel serve` is local unless asked: every socket its process tree listens on is on
127.0.0.1 (Ray's GCS, raylet, workers and agents, HAProxy's side ports, the metrics endpoint),
and `--host 0.0.0.0` opens the HTTP port on every interface (Ray's own ports stay local)."""

from __future__ import annotations

import socket
import time
import urllib.request

import psutil
import pytest

from tests.serve.conftest import Server

pytestmark = pytest.mark.ray

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _listening(root: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of ``root`` and its children."""
    out = []
    proc = psutil.Process(root)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="tcp")
            name = p.name()
        except psutil.NoSuchProcess:
            continue
        out += [(name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def _listening_with(root: int, port: int, timeout: float = 30) -> list[tuple[str, str, int]]:
    """``_listening`` once ``port`` is among them (HAProxy hands its socket over on reloads)."""
    deadline = time.time() + timeout
    while True:
        sockets = _listening(root)
        if any(p == port for _, _, p in sockets) or time.time() > deadline:
            return sockets
        time.sleep(0.5)


def _public_ip() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def test_serve_listens_on_loopback_only(digits_artifact):
    artifact, _ = digits_artifact
    server = Server(artifact.path, "--replicas", "1")
    try:
        sockets = _listening_with(server.proc.pid, server.port)
        ports = {port for _, _, port in sockets}
        assert server.port in ports
        assert int(server.metrics_url.rsplit(":", 1)[1].split("/")[0]) in ports
        assert any(name == "gcs_server" for name, _, _ in sockets)  # Ray's own are in the tree
        public = [s for s in sockets if s[1] not in LOOPBACK]
        assert not public, f"listening beyond loopback: {public}"
    finally:
        server.kill()


def test_host_0000_opens_the_http_port_publicly(digits_artifact):
    artifact, _ = digits_artifact
    server = Server(artifact.path, "--replicas", "1", "--host", "0.0.0.0")
    try:
        sockets = _listening_with(server.proc.pid, server.port)
        public = [s for s in sockets if s[1] not in LOOPBACK]
        assert ("haproxy", "0.0.0.0", server.port) in public or (
            "haproxy",
            "::",
            server.port,
        ) in public
        # Besides the HTTP port, only Serve's other HTTP entries to the same app follow
        # http_options.host (its fallback proxy and each replica's direct-ingress server; Ray 2.60
        # has no setting to keep them apart): never Ray's own services or HAProxy's side ports.
        others = [s for s in public if s[2] != server.port]
        assert all(
            name == "ray::ProxyActor" or name.startswith("ray::ServeReplica")
            for name, _, _ in others
        ), others
        ip = _public_ip()
        if ip is not None:  # reachable through another interface than loopback
            with urllib.request.urlopen(
                f"http://{ip}:{server.port}/v2/health/ready", timeout=10
            ) as r:
                assert r.status == 200
    finally:
        server.kill()
