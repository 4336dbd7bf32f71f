"""`automodel submit`: send a job to a cluster through Ray's Job Submission SDK, follow it.

The job runs ``jobs/<job>.py`` from the uploaded working directory (``python -m
automodel.cluster.launch._job <job>`` when it has no ``jobs/`` folder), so what runs on the cluster is
what ``ray job submit --working-dir . -- python jobs/pipeline.py --spec ...`` would run by hand.
The token for clusters with token authentication is sent as an ``Authorization`` header; it is
never put into the job's runtime environment.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import os
import secrets
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from automodel.errors import ClusterError

# Exit codes of `automodel submit` (2 stays the code of a user error, as everywhere).
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3, "PENDING": 4, "RUNNING": 4}
# How long a submission waits for a freshly started head's job agent.
AGENT_WAIT_S = 60
# Never uploaded: run outputs and VCS data (the working directory's .gitignore applies too).
EXCLUDES = [".git", "automodel_runs", "mlruns", "**/__pycache__", ".pytest_cache", ".ruff_cache"]
# Never uploaded whatever .gitignore says: secrets that commonly sit in a project directory
# (gitignore-style patterns: each matches at any depth).
SECRET_EXCLUDES = [".env", "*.pem", "*.key", "auth_token", ".ray/"]
# A spec from outside the working directory travels in the job's runtime environment (base64 in
# this variable) and is written to SHIPPED_SPEC in the job's working directory before the job runs.
SPEC_ENV = "AUTOMODEL_SPEC_B64"
SHIPPED_SPEC = ".automodel-spec.yaml"


def api_address(address: str | None) -> str:
    """The dashboard URL: ``--address``, else ``RAY_API_SERVER_ADDRESS`` / ``RAY_ADDRESS``."""
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ClusterError(
            "submit needs --address http://HEAD:8265 (the Ray dashboard; for a cluster.yaml cluster "
            "run `ray dashboard cluster.yaml` and use http://127.0.0.1:8265)"
        )
    # Passed on as given: Ray's client also takes "auto" and GCS addresses (it looks the dashboard up).
    return address


def client(address: str | None):
    """A JobSubmissionClient for ``address`` that sends the cluster token when there is one."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    from automodel.cluster._auth import auth_headers, prepare_client_auth

    url = api_address(address)
    prepare_client_auth(
        starting_local=False
    )  # for "auto" / GCS addresses, looked up through the GCS
    try:
        return JobSubmissionClient(url, headers=auth_headers())
    except AuthenticationError as exc:
        raise ClusterError(_auth_hint(url, exc)) from None
    except ConnectionError as exc:
        raise ClusterError(
            f"cannot reach the Ray dashboard at {url}: {_first_line(exc)} (is the cluster up? "
            "for a cluster.yaml cluster, keep `ray dashboard cluster.yaml` running)"
        ) from None


def _auth_hint(url: str, exc: Exception) -> str:
    return (
        f"the cluster at {url} refused the request: {_first_line(exc)}. It uses token "
        "authentication: copy its token to ~/.ray/auth_token (mode 0600) or point "
        "RAY_AUTH_TOKEN_PATH at it (on the head: `ray get-auth-token`)"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Submission:
    job_id: str
    entrypoint: str
    address: str


def entrypoint(
    job: str,
    spec_rel: str,
    working_dir: Path,
    out: str | None,
    extra: list[str],
    *,
    shipped: bool = False,
) -> str:
    """The shell command the job runs, relative to the uploaded working directory.

    ``shipped``: the spec comes in ``$AUTOMODEL_SPEC_B64`` (it lives outside the working
    directory); the command first writes it to ``spec_rel``.
    """
    script = f"jobs/{job}.py"
    cmd = (
        ["python", script]
        if (working_dir / script).is_file()
        else ["python", "-m", "automodel.cluster.launch._job", job]
    )
    cmd += ["--spec", spec_rel]
    if out:
        cmd += ["--out", out]
    run = shlex.join(cmd + extra)
    if not shipped:
        return run
    write = f"import base64, os; open({spec_rel!r}, 'wb').write(base64.b64decode(os.environ[{SPEC_ENV!r}]))"
    return f"{shlex.join(['python', '-c', write])} && {run}"


def submit(
    spec_path: str,
    *,
    address: str | None = None,
    job: str = "pipeline",
    out: str | None = None,
    working_dir: str = ".",
    pip: list[str] | None = None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Submission:
    """Validate the spec here, then submit ``job`` on it to the cluster at ``address``.

    Args:
        spec_path: spec YAML. Inside ``working_dir`` it is uploaded with it; outside, its text
            travels in the job's runtime environment and is written into the job's working
            directory, where its relative paths resolve as for a spec at the top of it.
        address: the cluster's dashboard URL (``http://HEAD:8265``).
        job: "pipeline", "train" or "sweep" (the script in ``jobs/``).
        out: run directory on the cluster (shared storage on a multi-node cluster).
        working_dir: the directory uploaded as the job's working directory.
        pip: extra pip requirements the job's runtime environment installs.
        env: extra environment variables for the job.
        extra_args: more arguments for the job script (``--resume``).

    Returns:
        the submission (its ``job_id`` for :func:`job_status`, :func:`stop_job`).
    """
    from automodel.spec import load_spec

    spec = load_spec(spec_path)  # a bad spec fails here, not on the cluster
    wd = Path(working_dir).resolve()
    if not wd.is_dir():
        raise ClusterError(f"--working-dir {working_dir} is not a directory")
    shipped: dict[str, str] = {}
    try:
        spec_rel = Path(spec_path).resolve().relative_to(wd).as_posix()
    except ValueError:  # not uploaded with the directory: send the file itself
        spec_rel = SHIPPED_SPEC
        shipped[SPEC_ENV] = base64.b64encode(Path(spec_path).read_bytes()).decode()
    if (
        out is None
        and "://" not in spec.runtime.storage
        and not Path(spec.runtime.storage).is_absolute()
    ):
        print(
            f"warning: runtime.storage {spec.runtime.storage!r} is relative: the run directory will be "
            "inside the job's temporary working directory on the head node; pass --out (shared "
            "storage) or set runtime.storage to s3://... or an NFS path",
            file=sys.stderr,
        )
    cmd = entrypoint(job, spec_rel, wd, out, list(extra_args or []), shipped=bool(shipped))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    job_id = f"automodel-{spec.name}-{stamp}-{secrets.token_hex(2)}"
    env_vars = {**(env or {}), **shipped}
    metadata = {"automodel_job": job, "automodel_spec": spec.name}
    return _send(cmd, wd, job_id, metadata, address=address, pip=pip, env=env_vars)


def _send(
    cmd: str,
    wd: Path,
    job_id: str,
    metadata: dict[str, str],
    *,
    address: str | None,
    pip: list[str] | None,
    env: dict[str, str],
) -> Submission:
    """Upload ``wd`` (secrets and caches excluded) and submit ``cmd``; wait for a new head's agent."""
    runtime_env: dict = {
        "working_dir": str(wd),
        "excludes": EXCLUDES + SECRET_EXCLUDES,
        "env_vars": {"PYTHONUNBUFFERED": "1", **env},
    }
    if pip:
        runtime_env["pip"] = list(pip)
    c = client(address)
    deadline = time.time() + AGENT_WAIT_S
    while True:
        try:
            c.submit_job(
                entrypoint=cmd, runtime_env=runtime_env, submission_id=job_id, metadata=metadata
            )
            return Submission(job_id, cmd, api_address(address))
        except RuntimeError as exc:
            # A head that has just started has no job agent for a few seconds: wait for it.
            if "No available agent" in str(exc) and time.time() < deadline:
                time.sleep(2)
                continue
            raise ClusterError(f"the cluster rejected job {job_id}: {_first_line(exc)}") from None


def submit_predict(
    artifact: str,
    input: str,
    out: str,
    *,
    address: str | None = None,
    working_dir: str = ".",
    pip: list[str] | None = None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Submission:
    """Submit ``jobs/predict.py ARTIFACT INPUT --out OUT`` (batch prediction) to the cluster.

    ``artifact`` is read by the job's driver on the head node: a path inside ``working_dir``
    (relative, uploaded with it) or on storage the head reaches. ``input`` and ``out``: storage
    every node reaches. ``extra_args``: more `automodel predict` flags (``--id customer_id``).
    """
    wd = Path(working_dir).resolve()
    if not wd.is_dir():
        raise ClusterError(f"--working-dir {working_dir} is not a directory")
    if not input or not out:
        raise ClusterError("--job predict needs ARTIFACT (in place of SPEC), --input and --out")
    script = (
        ["python", "jobs/predict.py"]
        if (wd / "jobs/predict.py").is_file()
        else ["python", "-m", "automodel.predict._cli"]
    )
    cmd = shlex.join([*script, artifact, input, "--out", out, *(extra_args or [])])
    job_id = f"automodel-predict-{_dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    metadata = {"automodel_job": "predict"}
    return _send(cmd, wd, job_id, metadata, address=address, pip=pip, env=dict(env or {}))


def follow(job_id: str, *, address: str | None = None, stream=None) -> str:
    """Print the job's logs as they come until it ends; return its final status name."""
    stream = stream or sys.stdout
    c = client(address)

    async def _tail() -> None:
        async for lines in c.tail_job_logs(job_id):
            stream.write(lines)
            stream.flush()

    try:
        asyncio.run(_tail())
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the job goes on. `automodel submit --stop {job_id}` stops it",
            file=sys.stderr,
        )
        raise
    return job_status(job_id, address=address)[0]


def job_status(job_id: str, *, address: str | None = None) -> tuple[str, str]:
    """The job's status name (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and Ray's message."""
    c = client(address)
    try:
        info = c.get_job_info(job_id)
    except RuntimeError as exc:
        raise ClusterError(
            f"no job {job_id} at {api_address(address)}: {_first_line(exc)}"
        ) from None
    return str(
        info.status.value if hasattr(info.status, "value") else info.status
    ), info.message or ""


def stop_job(job_id: str, *, address: str | None = None) -> bool:
    """Ask the cluster to stop the job; False when it had already ended."""
    c = client(address)
    try:
        return bool(c.stop_job(job_id))
    except RuntimeError as exc:
        raise ClusterError(f"cannot stop job {job_id}: {_first_line(exc)}") from None
