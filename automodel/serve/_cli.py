"""`automodel serve` and `automodel deploy`. Cheap to import: Ray loads only when a command runs."""

from __future__ import annotations

import argparse


def add_parsers(sub) -> None:
    s = sub.add_parser("serve", help="serve an artifact on an embedded local Ray (Ctrl-C stops)")
    s.add_argument("artifact", help="artifact directory (…/artifact with model.onnx, card.json)")
    s.add_argument("--port", type=int, help="HTTP port (default: serve.port, 8000)")
    s.add_argument(
        "--host",
        help="HTTP bind address (default: serve.host, 127.0.0.1: this machine only; "
        "0.0.0.0: every interface). Ray's own ports stay on 127.0.0.1 either way",
    )
    s.add_argument("--replicas", type=int, help="fixed replica count (sets min and max replicas)")
    s.add_argument(
        "--ingress",
        choices=["haproxy", "python"],
        help="haproxy (default, fast) or Ray Serve's Python proxy",
    )
    s.add_argument("--num-cpus", type=int, help="CPUs of the embedded Ray (default: all)")
    s.set_defaults(handler=_serve)

    r = sub.add_parser(
        "rollout",
        help="roll a new version out on a running app: shadow, canary steps, promote or roll back",
    )
    r.add_argument("artifact", nargs="?", help="the new version's artifact directory")
    r.add_argument("--app", help="the running Serve application (default: the new card's name)")
    r.add_argument(
        "--address",
        help="Ray address of the running service (default: RAY_ADDRESS, else auto); "
        "`automodel serve` prints it",
    )
    r.add_argument(
        "--steps",
        default="5,25,50,100",
        help="canary traffic shares in percent after the shadow window (default 5,25,50,100)",
    )
    r.add_argument(
        "--step-seconds", type=float, default=60.0, help="seconds a step lasts (default 60)"
    )
    r.add_argument(
        "--shadow-seconds",
        type=float,
        help="seconds of the shadow window before the first canary step "
        "(default: --step-seconds; 0: no shadow window)",
    )
    r.add_argument(
        "--max-error-rate",
        type=float,
        default=0.01,
        help="roll back when the new version fails more than this share of the requests the "
        "stable version answers (default 0.01)",
    )
    r.add_argument(
        "--max-latency-ratio",
        type=float,
        default=2.0,
        help="roll back when its p50 or p99 latency is more than this times the stable "
        "version's (default 2.0)",
    )
    r.add_argument(
        "--min-agreement",
        type=float,
        default=0.9,
        help="roll back when fewer than this share of its predictions equal the stable "
        "version's on the same rows (regression: within 10%% relative error; default 0.9)",
    )
    r.add_argument(
        "--min-requests",
        type=int,
        default=50,
        help="requests the new version must see before a step is judged (default 50)",
    )
    r.add_argument(
        "--record", default="rollout.json", help="the record of steps and decision (rollout.json)"
    )
    r.add_argument(
        "--status", action="store_true", help="print the recorded rollout's phase and comparison"
    )
    r.set_defaults(handler=_rollout)

    # The deploy parser: other stages may add options here (e.g. --docker); keep it in one place.
    d = sub.add_parser("deploy", help="write a Serve config YAML for `serve deploy` / `serve run`")
    add_deploy_arguments(d)
    d.set_defaults(handler=_deploy)


def add_deploy_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("artifact", help="artifact directory")
    d.add_argument("--out", help="YAML file to write (default: print to stdout)")
    d.add_argument("--port", type=int, help="HTTP port in the config (default: serve.port)")
    where = d.add_mutually_exclusive_group()
    where.add_argument(
        "--host",
        help="HTTP bind address in the config (default: serve.host, 127.0.0.1: the node itself)",
    )
    where.add_argument(
        "--public",
        action="store_true",
        help="bind 0.0.0.0 (every interface), as a cluster's load balancer needs; "
        "put authentication (serve.auth_token_env) or a firewall in front",
    )
    d.add_argument(
        "--name", help="model/application name (default: serve.name, else the card's name)"
    )
    # --docker is added by the cluster's top layer (automodel/cluster/launch/_cli.py).


def _overrides(args) -> dict:
    o = {"name": getattr(args, "name", None)}
    if getattr(args, "replicas", None) is not None:
        o["min_replicas"] = o["max_replicas"] = args.replicas
    return o


def _serve(args) -> int:
    from automodel.serve._launch import serve_artifact

    return serve_artifact(
        args.artifact,
        port=args.port,
        host=args.host,
        ingress=args.ingress,
        overrides=_overrides(args),
        num_cpus=args.num_cpus,
    )


def _deploy(args) -> int:
    from automodel.serve._config import write_deploy_config

    host = "0.0.0.0" if getattr(args, "public", False) else args.host
    text = write_deploy_config(
        args.artifact, out=args.out, port=args.port, host=host, overrides=_overrides(args)
    )
    if args.out:
        print(
            f"wrote {args.out}: run it with `serve deploy {args.out}` (cluster) or `serve run {args.out}`"
        )
    else:
        print(text, end="")
    return 0


def _rollout(args) -> int:
    from pydantic import ValidationError

    from automodel.serve import _rollout as ro

    if args.status:
        return ro.status(args.record)
    if not args.artifact:
        raise ro.RolloutError("rollout: expected NEW_ARTIFACT (or --status), got nothing")
    try:
        steps = tuple(float(w) for w in args.steps.split(",") if w.strip())
    except ValueError:
        raise ro.RolloutError(
            f"--steps: expected percentages like 5,25,50,100, got {args.steps!r}"
        ) from None
    try:
        thresholds = ro.Thresholds(
            max_error_rate=args.max_error_rate,
            max_latency_ratio=args.max_latency_ratio,
            min_agreement=args.min_agreement,
            min_requests=args.min_requests,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-")
        raise ro.RolloutError(f"{flag}: {err['msg']}, got {err['input']}") from None
    if args.app is None:
        from automodel.artifact import read_artifact

        args.app = read_artifact(args.artifact).name
    return ro.rollout(
        args.artifact,
        app=args.app,
        address=args.address,
        steps=steps,
        step_seconds=args.step_seconds,
        shadow_seconds=args.shadow_seconds,
        thresholds=thresholds,
        record=args.record,
    )
