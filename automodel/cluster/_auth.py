"""Ray token authentication: find the cluster token, keep its file private, turn the mode on.

Ray 2.60 turns token authentication on for clusters it starts locally and writes the token to
``~/.ray/auth_token``; a client that connects by explicit address (``ray.init(address=...)``, the
Job Submission SDK) must opt in with ``RAY_AUTH_MODE=token``, else it is refused. Ray looks for the
token in ``RAY_AUTH_TOKEN``, then the file named by ``RAY_AUTH_TOKEN_PATH``, then
``~/.ray/auth_token``; so do we. A client in token mode still talks to a cluster without
authentication (measured on 2.60), so turning the mode on whenever a token exists is safe.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"


def default_token_path() -> Path:
    """Where Ray keeps the token by default: ``~/.ray/auth_token``."""
    return Path.home() / ".ray" / "auth_token"


def token_file() -> Path | None:
    """The token file Ray would read (``RAY_AUTH_TOKEN_PATH``, else the default), if it exists."""
    path = (
        Path(os.environ[TOKEN_PATH_ENV]).expanduser()
        if os.environ.get(TOKEN_PATH_ENV)
        else default_token_path()
    )
    return path if path.is_file() else None


def read_token() -> str | None:
    """The token a client would send, in Ray's order of precedence; None when there is none."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    path = token_file()
    if path is None:
        return None
    restrict_to_owner(path)
    return path.read_text().strip() or None


def restrict_to_owner(path: Path) -> None:
    """Make a token file readable by its owner only (Ray creates it world-readable).

    Files that belong to another user are left alone: we cannot and must not chmod them.
    """
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            path.chmod(0o600)
    except OSError:
        pass


def create_token_file(path: Path | None = None) -> Path:
    """Write a fresh random token with mode 0600 unless one exists; return its path.

    Ray's own generator writes the file with the process umask (0644 by default); creating it
    first, exclusively and private, means Ray then reuses ours.
    """
    path = path or default_token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        restrict_to_owner(path)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # 256 bits, as Ray's own generator writes
    return path


def auth_mode() -> str | None:
    """``RAY_AUTH_MODE`` as set by the user (lower case), or None when unset."""
    mode = os.environ.get(AUTH_MODE_ENV)
    return mode.lower() if mode else None


def enable_token_auth() -> None:
    """Put this process (and its children) in token mode, as Ray does for its local clusters."""
    from automodel.cluster._compat import reload_ray_config

    os.environ[AUTH_MODE_ENV] = "token"
    reload_ray_config()  # Ray caches its config; re-read it so this process sees the mode too


def prepare_client_auth(*, starting_local: bool) -> bool:
    """Before ``ray.init``: pick the auth mode and make sure the token file is private.

    An explicit ``RAY_AUTH_MODE`` is respected. Otherwise token mode is turned on when a token
    exists (Ray itself only does that for ``address="auto"``, so a driver given an explicit address
    of a token cluster would be refused after 20 s of retries). A new local instance gets token
    auth (Ray's default) with a private token file created here.

    Returns:
        whether token auth is on for this process.
    """
    mode = auth_mode()
    if mode is not None and mode != "token":
        return False
    if starting_local and not os.environ.get(TOKEN_ENV) and token_file() is None:
        create_token_file(
            Path(os.environ[TOKEN_PATH_ENV]).expanduser()
            if os.environ.get(TOKEN_PATH_ENV)
            else None
        )
    if read_token() is None:
        return mode == "token"
    if mode is None:
        enable_token_auth()
    return True


def auth_headers() -> dict[str, str]:
    """HTTP headers for the Ray dashboard (jobs API) when a token is available."""
    if auth_mode() not in (None, "token"):
        return {}
    token = read_token()
    return {"Authorization": f"Bearer {token}"} if token else {}
