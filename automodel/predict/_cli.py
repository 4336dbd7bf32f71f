"""`automodel predict ARTIFACT INPUT --out OUTPUT`, and ``jobs/predict.py`` (same flags).

Cheap to import: Ray, pyarrow and ONNX Runtime load only when it runs.
"""

from __future__ import annotations

import argparse
import sys


def _flags(s: argparse.ArgumentParser) -> None:
    s.add_argument("artifact", help="artifact directory (or a run directory holding artifact/)")
    s.add_argument(
        "input", help="Parquet or CSV: a file, directory, glob or s3:// prefix (quote globs)"
    )
    s.add_argument(
        "--out",
        required=True,
        metavar="OUTPUT",
        help="output directory of Parquet files (errors/ holds refused rows, predict.json the summary)",
    )
    s.add_argument("--id", metavar="COLUMN", help="column copied beside each prediction")
    s.add_argument(
        "--keep",
        metavar="COLS",
        help="comma-separated columns copied beside each prediction (default without --id: all)",
    )
    s.add_argument(
        "--probabilities", action="store_true", help="add a probability_<class> column a class"
    )
    s.add_argument(
        "--batch-size",
        type=int,
        default=8192,
        metavar="N",
        help="rows an actor scores at once (8192)",
    )
    s.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="prediction actors (default: scale to the cluster)",
    )
    s.add_argument(
        "--num-cpus", type=float, default=1.0, metavar="F", help="CPUs an actor reserves (1)"
    )
    s.add_argument(
        "--num-gpus", type=float, default=0.0, metavar="F", help="GPUs an actor reserves (0)"
    )
    s.add_argument("--overwrite", action="store_true", help="empty OUTPUT first if it holds files")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "predict",
        help="score Parquet/CSV files with an artifact (Ray Data, streamed)",
        description="Score files of any size with an artifact: Ray Data reads them, a pool of "
        "ONNX Runtime actors scores them with serving's encoding, Parquet comes out. Rows that "
        "cannot be encoded go to OUTPUT/errors/ with the reason.",
    )
    _flags(s)
    s.add_argument(
        "--address",
        help="Ray cluster to join (HOST:PORT of its GCS; default: RAY_ADDRESS, else an embedded "
        "local Ray)",
    )
    s.set_defaults(handler=run)


def run(args: argparse.Namespace, address: str | None = None) -> int:
    from automodel.predict import predict
    from automodel.progress import Progress

    address = address if address is not None else getattr(args, "address", None)
    keep = [c.strip() for c in args.keep.split(",") if c.strip()] if args.keep else None
    summary = predict(
        args.artifact,
        args.input,
        args.out,
        id=args.id,
        keep=keep,
        probabilities=args.probabilities,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        address=address,
        overwrite=args.overwrite,
        progress=Progress(getattr(args, "quiet", False)),
    )
    print(summary.line(), flush=True)
    return 0


def job_main(argv: list[str] | None = None) -> int:
    """``jobs/predict.py``: the same flags, joining the cluster in ``RAY_ADDRESS``."""
    import os

    from automodel.errors import AutomodelError

    p = argparse.ArgumentParser(
        prog="jobs/predict.py", description="automodel predict as a job for `ray job submit`"
    )
    _flags(p)
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to join (default: RAY_ADDRESS, which `ray job submit` sets)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    try:
        return run(args, address=args.address)
    except AutomodelError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":  # `python -m automodel.predict._cli ...`: a working dir without jobs/
    sys.exit(job_main())
