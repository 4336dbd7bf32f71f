"""Token auth helpers: the token file stays private, Ray's lookup order is kept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from automodel.cluster import _auth
from tests.conftest import REPO


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_token_file_is_owner_only(tmp_path):
    path = _auth.create_token_file(tmp_path / "ray" / "auth_token")
    assert _mode(path) == 0o600
    assert len(path.read_text()) >= 32
    before = path.read_text()
    assert _auth.create_token_file(path).read_text() == before  # an existing token is kept


def test_world_readable_token_is_made_private_when_read(tmp_path, monkeypatch):
    path = tmp_path / "auth_token"
    path.write_text("abc123\n")
    path.chmod(0o644)  # how Ray writes the token it generates
    monkeypatch.delenv(_auth.TOKEN_ENV, raising=False)
    monkeypatch.setenv(_auth.TOKEN_PATH_ENV, str(path))
    assert _auth.read_token() == "abc123"
    assert _mode(path) == 0o600
    assert _auth.auth_headers() == {"Authorization": "Bearer abc123"}


def test_token_env_wins_and_disabled_mode_sends_nothing(tmp_path, monkeypatch):
    path = tmp_path / "auth_token"
    path.write_text("from-file")
    monkeypatch.setenv(_auth.TOKEN_PATH_ENV, str(path))
    monkeypatch.setenv(_auth.TOKEN_ENV, "from-env")
    assert _auth.read_token() == "from-env"
    monkeypatch.setenv(_auth.AUTH_MODE_ENV, "disabled")
    assert _auth.auth_headers() == {}
    assert _auth.prepare_client_auth(starting_local=False) is False


def test_token_mode_turns_on_when_a_token_exists(tmp_path):
    # In a child process: turning the mode on changes the process's environment and Ray config.
    path = tmp_path / "auth_token"
    path.write_text("tok")
    env = {k: v for k, v in os.environ.items() if k not in (_auth.AUTH_MODE_ENV, _auth.TOKEN_ENV)}
    code = (
        "import os; from automodel.cluster._auth import prepare_client_auth; "
        "print(prepare_client_auth(starting_local=False), os.environ.get('RAY_AUTH_MODE'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, _auth.TOKEN_PATH_ENV: str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.stdout.split() == ["True", "token"], out.stderr
