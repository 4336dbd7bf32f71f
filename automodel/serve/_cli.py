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
