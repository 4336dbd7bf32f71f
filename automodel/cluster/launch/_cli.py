"""`automodel submit` (run a spec as a job on a Ray cluster; --status / --stop a job) and
`automodel deploy --docker` (a Docker build context for an artifact).

Cheap to import: Ray is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys


def add_parsers(sub) -> None:
    _add_docker_option(sub)
    s = sub.add_parser(
        "submit",
        help="run a spec as a Ray job on a cluster (Job Submission SDK); --status/--stop ID",
        description="Submit SPEC as a job (jobs/<job>.py from the uploaded working directory), follow "
        "its logs and exit with its status: 0 succeeded, 1 failed, 3 stopped, 4 still running "
        "(--status), 2 a usage or connection error.",
    )
    s.add_argument(
        "spec",
        nargs="?",
        help="spec YAML; one outside the working directory travels with the job by itself",
    )
    s.add_argument(
        "--address",
        help="Ray dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS or RAY_ADDRESS)",
    )
    s.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the logs until the job ends (default) or print its ID and return",
    )
    s.add_argument(
        "--job",
        choices=("pipeline", "train", "sweep", "predict"),
        default="pipeline",
        help="what to run: the whole chain (default), train spec.model, the sweep, or batch "
        "prediction (ARTIFACT in place of SPEC, --input, --out, --predict-args)",
    )
    s.add_argument(
        "--input", help="with --job predict: the files to score (storage every node reaches)"
    )
    s.add_argument(
        "--predict-args",
        default="",
        metavar="ARGS",
        help='with --job predict: more `automodel predict` flags, quoted ("--id customer_id")',
    )
    s.add_argument(
        "--out", help="run directory on the cluster (shared storage on a multi-node cluster)"
    )
    s.add_argument(
        "--working-dir",
        default=".",
        help="directory uploaded with the job (default: .), filtered by its .gitignore; .env, "
        "*.pem, *.key, auth_token and .ray/ are never uploaded",
    )
    s.add_argument(
        "--pip",
        action="append",
        default=[],
        metavar="REQ",
        help="pip requirement the job's runtime environment installs (repeatable)",
    )
    s.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the job (repeatable)",
    )
    s.add_argument(
        "--resume", action="store_true", help="with --job sweep: continue the sweep in --out"
    )
    group = s.add_mutually_exclusive_group()
    group.add_argument("--status", metavar="ID", help="print a job's status and exit with its code")
    group.add_argument("--stop", metavar="ID", help="stop a running job")
    s.set_defaults(handler=_submit)


def _add_docker_option(sub) -> None:
    """Add ``--docker`` to the `deploy` command the serve stage registered (it comes first)."""
    deploy = sub.choices.get("deploy")
    if deploy is None:
        return
    deploy.add_argument(
        "--docker",
        action="store_true",
        help="write a Docker build context into --out DIR instead (default: <run>/docker)",
    )
    serve_deploy = deploy.get_default("handler")

    def _deploy(args) -> int:
        if args.docker:
            from automodel.cluster.launch._docker import deploy_docker

            return deploy_docker(args)
        return serve_deploy(args)

    deploy.set_defaults(handler=_deploy)


def _submit(args) -> int:
    from automodel.cluster.launch import _submit as sub
    from automodel.errors import ClusterError

    if args.status:
        status, message = sub.job_status(args.status, address=args.address)
        print(f"{args.status} {status}" + (f": {message.splitlines()[0]}" if message else ""))
        return sub.EXIT_CODES.get(status, 1)
    if args.stop:
        stopped = sub.stop_job(args.stop, address=args.address)
        print(f"{args.stop} {'stop requested' if stopped else 'had already ended'}")
        return 0
    if not args.spec:
        raise ClusterError("submit needs a SPEC (or --status ID / --stop ID)")
    if args.resume and args.job != "sweep":
        raise ClusterError(
            f"--resume continues a sweep: it needs --job sweep, got --job {args.job}"
        )
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ClusterError(f"--env takes KEY=VALUE, got {item!r}")
        env[key] = value
    if args.job == "predict":
        import shlex

        submission = sub.submit_predict(
            args.spec,
            args.input,
            args.out,
            address=args.address,
            working_dir=args.working_dir,
            pip=args.pip,
            env=env,
            extra_args=shlex.split(args.predict_args),
        )
    else:
        submission = sub.submit(
            args.spec,
            address=args.address,
            job=args.job,
            out=args.out,
            working_dir=args.working_dir,
            pip=args.pip,
            env=env,
            extra_args=["--resume"] if args.resume else [],
        )
    print(
        f"submitted {submission.job_id} to {submission.address}: {submission.entrypoint}",
        file=sys.stderr,
    )
    if not args.wait:
        print(submission.job_id)
        return 0
    status = sub.follow(submission.job_id, address=args.address)
    _, message = sub.job_status(submission.job_id, address=args.address)
    line = f"job {submission.job_id} {status}"
    if status != "SUCCEEDED" and message:
        line += f": {message.splitlines()[0]}"
    print(line, file=sys.stderr)
    return sub.EXIT_CODES.get(status, 1)
