"""Guards that act before work: the bearer token is checked before the body is read, GET /
needs the token when auth is on, and a full queue answers 503 at once.

Raw sockets make "not read" observable: a request announces a 50 MB body and sends 64 KB of it.
An unauthenticated one is answered 401 while 99.9% of its body is still unsent; an
authenticated one gets no answer until the body arrives (it is read), then a 4xx.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from automodel.spec import Spec
from tests.serve.conftest import Server, make_artifact

pytestmark = pytest.mark.ray

TOKEN_ENV = "AUTOMODEL_TEST_GUARD_TOKEN"
TOKEN = "guard-token"
BIG = 50 * 1024 * 1024
SENT = 64 * 1024


def _post_head(port: int, length: int, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    ).encode()


def _status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the response, or None if none starts within ``timeout``."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("guards")
    serve = {"auth_token_env": TOKEN_ENV, "max_body_bytes": 64 * 1024 * 1024, "max_replicas": 1}
    artifact, _ = make_artifact(
        root / "artifact", Spec(name="digits", serve=serve), "logistic", {"C": 1.0}, dataset=digits
    )
    server = Server(artifact.path, env={TOKEN_ENV: TOKEN})
    yield server
    server.kill()


def test_token_is_checked_before_the_body_is_read(guarded):
    port = guarded.port
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.time()
        s.sendall(_post_head(port, BIG, None) + b"0" * SENT)
        status = _status(s, 30)
        unauth_s = time.time() - start
    assert status == 401, "an unauthenticated 50 MB request must be refused from its headers"

    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.time()
        s.sendall(_post_head(port, BIG, TOKEN) + b"0" * SENT)
        assert _status(s, 3) is None  # authenticated: the replica waits for the body it reads
        s.sendall(b"0" * (BIG - SENT))
        status = _status(s, 120)
        auth_s = time.time() - start
    assert status is not None and 400 <= status < 500, status  # read, then refused as bad JSON
    print(
        f"50 MB body: unauthenticated 401 in {unauth_s:.3f} s; authenticated read + {status} in {auth_s:.3f} s"
    )
    assert unauth_s < auth_s


def test_index_needs_the_token_when_auth_is_on(guarded):
    r = httpx.get(f"{guarded.url}/", timeout=30)
    assert r.status_code == 401 and "inputs" not in r.text
    r = httpx.get(f"{guarded.url}/", headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200 and r.json()["model"] == "digits" and r.json()["inputs"]
    assert httpx.get(f"{guarded.url}/v2/health/ready", timeout=30).status_code == 200  # probes open


def test_a_full_queue_answers_503_at_once(tmp_path, digits):
    serve = {"max_ongoing_requests": 1, "max_queued_requests": 1, "max_replicas": 1}
    artifact, _ = make_artifact(
        tmp_path / "artifact", Spec(name="digits", serve=serve), "logistic", dataset=digits
    )
    server = Server(artifact.path, "--ingress", "python")
    socks = []
    try:
        # Requests whose bodies never finish hold the one slot and the one queue place.
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(_post_head(server.port, 1000, None) + b'{"features": ')
            socks.append(s)
            time.sleep(1.0)
        start = time.time()
        r = httpx.post(f"{server.url}/predict", json={"features": [[0] * 64]}, timeout=30)
        took = time.time() - start
        assert r.status_code == 503, (r.status_code, r.text[:200])
        assert took < 10, took
    finally:
        for s in socks:
            s.close()
        server.kill()
