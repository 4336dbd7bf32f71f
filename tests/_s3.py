"""A local S3 endpoint for tests: ``moto[server]`` on 127.0.0.1 and a free port, in its own
process, stopped by its handle. Clients reach it the way they reach any S3-compatible store:
``AWS_ENDPOINT_URL`` and (dummy) credentials in the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import requests


class S3Server:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.time() + 60
        while time.time() < end:
            try:
                requests.get(self.url, timeout=2)
                return
            except requests.RequestException:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.close()
        raise RuntimeError("moto server did not come up")

    def bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"am-{uuid.uuid4().hex[:12]}"
        r = requests.put(f"{self.url}/{name}", timeout=10)
        r.raise_for_status()
        return name

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
