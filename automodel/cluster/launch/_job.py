"""What `jobs/*.py` run: parse ``--spec``/``--out``, join the cluster, preflight, call the stage.

A job driver started by ``ray job submit`` finds its cluster in ``RAY_ADDRESS``; the spec's
``runtime.address`` is set from it, so the same functions as the CLI run against the cluster, and
preflight fails in seconds when the spec asks for more than the cluster can ever have.
``python -m automodel.cluster.launch._job STAGE ...`` is the same entry point for working directories
without a ``jobs/`` folder (``automodel submit`` uses it there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from automodel.errors import AutomodelError

JOBS = ("pipeline", "train", "sweep")
# Which parts of the spec make demands on the cluster, per job.
JOB_STAGES = {"pipeline": ("search", "train"), "train": ("train",), "sweep": ("search",)}


def job_parser(
    job: str, description: str, *, address_default: str | None = None
) -> argparse.ArgumentParser:
    """The parser every ``jobs/<job>.py`` starts from: its name and ``--address``.

    ``--address`` defaults to ``RAY_ADDRESS`` (which ``ray job submit`` sets), else
    ``address_default`` (None: the spec's ``runtime.address``).
    """
    p = argparse.ArgumentParser(prog=f"jobs/{job}.py", description=description)
    fallback = "the spec's runtime.address" if address_default is None else repr(address_default)
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS", address_default),
        help=f"Ray cluster to join (default: RAY_ADDRESS, which `ray job submit` sets; else {fallback})",
    )
    return p


def _parser(job: str) -> argparse.ArgumentParser:
    p = job_parser(job, f"automodel {job} job for `ray job submit`")
    p.add_argument(
        "--spec",
        required=job != "pipeline",
        help="spec YAML (pipeline default: the digits quickstart)",
    )
    p.add_argument(
        "--out", help="run directory; on a multi-node cluster use shared storage (NFS or s3://)"
    )
    if job == "sweep":
        p.add_argument("--resume", action="store_true", help="continue the sweep in --out")
    return p


def job_main(job: str, argv: list[str] | None = None) -> int:
    """Run ``job`` (pipeline, train or sweep) as a cluster job; returns the process exit code."""
    if job not in JOBS:
        raise ValueError(f"job must be one of {JOBS}, got {job!r}")
    args = _parser(job).parse_args(argv)
    try:
        return _run(job, args)
    except AutomodelError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return exc.exit_code


def _run(job: str, args: argparse.Namespace) -> int:
    from automodel.cluster._preflight import check_resources
    from automodel.cluster._runtime import ray_session
    from automodel.spec import load_spec

    start = time.time()
    spec = load_spec(args.spec)
    if args.address:
        spec.runtime.address = args.address
    with ray_session(spec.runtime):
        # Before loading any data: fail in seconds, not after a long wait for resources.
        check_resources(spec, JOB_STAGES[job])
        print(
            f"[automodel] preflight ok ({time.time() - start:.1f} s): {job} of {spec.name!r}",
            flush=True,
        )
        if job == "pipeline":
            from automodel.pipeline import run

            result = run(spec, args.out)
            print(
                f"[automodel] best family {result.artifact.card.family}, test {result.metric} "
                f"{result.test_score:.4f}, artifact {result.artifact.path}",
                flush=True,
            )
        elif job == "train":
            from automodel.stages import train_stage

            artifact = train_stage(spec, args.out)
            print(
                f"[automodel] trained {artifact.card.family}, artifact {artifact.path}",
                flush=True,
            )
        else:
            from automodel.stages import tune_stage

            result = tune_stage(spec, args.out, resume=args.resume)
            print(
                f"[automodel] best {result.family} {result.metric}={result.score:.4f}", flush=True
            )
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        print(
            f"usage: python -m automodel.cluster.launch._job {{{','.join(JOBS)}}} [--spec SPEC] [--out DIR]",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(job_main(sys.argv[1], sys.argv[2:]))
