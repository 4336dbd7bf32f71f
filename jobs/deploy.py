"""Deploy (or update) an artifact's Serve application on the cluster this job runs on.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/deploy.py --artifact /shared/runs/digits/<run>/artifact [--out serve.yaml]

Writes the same Serve config as `automodel deploy` and applies it as `serve deploy` does. Run it
again with a new artifact of the same model: the replicas load it in place (user_config), so
no request is dropped and responses name the new version.
"""

import sys

import _path  # noqa: F401  (first: the automodel that was sent wins over an installed one)

from automodel.cluster.launch import job_parser
from automodel.errors import AutomodelError


def main(argv=None) -> int:
    p = job_parser("deploy", __doc__.splitlines()[0], address_default="auto")
    p.add_argument(
        "--artifact",
        required=True,
        help="artifact: a URI every node reads (s3://..., gs://...), or a directory on one node",
    )
    p.add_argument("--out", help="also write the Serve config YAML here")
    p.add_argument(
        "--port", type=int, help="HTTP port (default: serve.port); fixed once Serve runs"
    )
    p.add_argument("--no-apply", action="store_true", help="only write the config")
    args = p.parse_args(argv)
    try:
        from automodel.artifact import read_artifact
        from automodel.serve._config import apply_config, deploy_config, write_deploy_config

        config = deploy_config(args.artifact, port=args.port)
        app = config["applications"][0]
        if args.out:
            write_deploy_config(args.artifact, out=args.out, port=args.port)
            print(f"[automodel] wrote {args.out}", flush=True)
        if args.no_apply:
            return 0
        import ray

        from automodel.cluster import prepare_client_auth

        prepare_client_auth(starting_local=False)  # a token cluster refuses a driver without it
        from automodel.cluster._compat import local_only_for

        with local_only_for(args.address):  # `automodel serve`'s Ray listens on 127.0.0.1 only
            ray.init(address=args.address, log_to_driver=False, logging_level="WARNING")
        try:
            from automodel.cluster import require_shared_artifact

            # a local artifact and other nodes: refused here, not a replica crash loop there
            require_shared_artifact(app["args"]["artifact"], "deploy")
            apply_config(config)
        finally:
            ray.shutdown()
        print(
            f"[automodel] {app['name']} is running version {read_artifact(args.artifact).version}",
            flush=True,
        )
        return 0
    except AutomodelError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
