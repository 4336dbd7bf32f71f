"""The `automodel` command: parse, load the spec, call the stage, exit code.

User errors print one line on stderr and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from automodel import __version__
from automodel.errors import AutomodelError


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for the command ``argv`` names (None: every command)."""
    p = argparse.ArgumentParser(
        prog="automodel", description="Train, optimize and deploy models on Ray."
    )
    p.add_argument("--version", action="version", version=f"automodel {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "run", help="the whole chain: search, train, export (default: digits quickstart)"
    )
    s.add_argument("spec", nargs="?", help="spec YAML (default: builtin digits quickstart)")
    s.add_argument("--out", help="run directory (default: <storage>/<name>/<timestamp>)")
    s.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="the whole run's wall-clock budget, from the command's start: the sweep gets what "
        "Ray's start, the final fit, export and report leave (docs/search.md)",
    )

    s = sub.add_parser("validate", help="check a spec and print it resolved")
    s.add_argument("spec", nargs="?")
    s.add_argument("--schema", action="store_true", help="print the spec's JSON schema instead")

    s = sub.add_parser("tune", help="run (or resume) the hyperparameter / family / feature search")
    s.add_argument("spec")
    s.add_argument("--out")
    s.add_argument("--resume", action="store_true", help="continue the sweep in --out")

    s = sub.add_parser("train", help="train spec.model (family, params) and write an artifact")
    s.add_argument("spec")
    s.add_argument("--out")

    # Stage packages add their own commands (compress, serve, deploy, submit, report, predict).
    # Importing a stage's CLI module imports its package (e.g. compress loads scikit-learn and
    # torch: 2 s), so only the modules the command needs are imported; help and an unknown
    # command import them all.
    for module in _stage_cli_modules(argv):
        module.add_parsers(sub)
    return p


# Each stage CLI module and the commands it adds (or extends: `deploy --docker` is added by the
# cluster's launcher, after serve's `deploy`), in the order their add_parsers must run.
STAGE_CLIS = {
    "automodel.compress._cli": ("compress",),
    "automodel.serve._cli": ("serve", "deploy", "rollout"),
    "automodel.cluster.launch._cli": ("submit", "deploy"),
    "automodel.report._cli": ("report",),
    "automodel.predict._cli": ("predict",),
}
CORE_COMMANDS = ("run", "validate", "tune", "train")


def _stage_cli_modules(argv: list[str] | None):
    """The stage CLI modules ``argv``'s command needs: its own; none for a core command,
    ``--version`` or no command; all for help and an unknown command (argparse lists them)."""
    import importlib

    names = list(STAGE_CLIS)
    if argv is not None:
        # the command word: the first argument that is not an option (global options take no value)
        command = next((a for a in argv if not a.startswith("-")), None)
        owners = [name for name, commands in STAGE_CLIS.items() if command in commands]
        if command in CORE_COMMANDS or (command is None and not {"-h", "--help"} & set(argv)):
            names = []
        elif owners:
            names = owners
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main(argv: list[str] | None = None) -> int:
    """The command line; ``argv`` None: this process's own arguments, and it is the program, so
    it may end at once when done (see :func:`_exit_now`)."""
    program = argv is None
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)
    if not args.debug:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.showwarning = _one_line_warning
    try:
        code = _dispatch(args)
    except AutomodelError as exc:
        if args.debug:
            raise
        print(str(exc), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    finally:  # after the error line: a Ray start no stage took is shut down
        if (runtime := sys.modules.get("automodel.cluster._runtime")) is not None:
            runtime.release_pending()
    if program:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the program now that its work is written, without tearing its modules down one by one.

    An interpreter that imported torch, scikit-learn, pandas and Ray spends 3-10 s at exit
    freeing them module by module (7 s on 2 busy cores), after everything is written. When Ray
    is stopped and no other thread still works, the exit handlers run (logging and MLflow flush,
    Ray's own shutdown) and the process ends at once; otherwise it exits the ordinary way.
    """
    import atexit
    import threading

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return
    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()  # what the ordinary exit runs first: handlers, not module teardown
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) loses nothing
            stream.flush()
    os._exit(code)


def _started() -> float:
    """When this process started: a run's time budget counts its imports and Ray's start too."""
    import psutil

    return psutil.Process().create_time()


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _load(args):
    from automodel.spec import load_spec

    spec = load_spec(getattr(args, "spec", None))
    if args.quiet:
        spec.runtime.quiet = True
    return spec


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "validate":
        from automodel.spec import dump_spec, spec_json_schema

        if args.schema:
            print(json.dumps(spec_json_schema(), indent=2))
            return 0
        print(dump_spec(_load(args)), end="")
        return 0
    if cmd == "run":
        if args.time_budget is not None and args.time_budget <= 0:
            print(f"--time-budget: must be > 0 seconds, got {args.time_budget:g}", file=sys.stderr)
            return 2
        spec = _load(args)  # a spec or data-path error in well under a second: before any import
        from automodel.cluster._runtime import start_ray

        # Ray starts while the pipeline imports and loads the data, unless a check still waits
        # for the data (a metric against the task the target implies): a spec error never
        # starts Ray, and its line comes as soon as the data is read.
        if spec.search.metric is None or spec.data.task is not None:
            start_ray(spec.runtime)
        from automodel.pipeline import run

        result = run(spec, args.out, time_budget_s=args.time_budget, started=_started())
        print(
            f"best family: {result.artifact.card.family}  test {result.metric}: {result.test_score:.4f}  "
            f"run directory: {result.location}"
        )
        return 0
    if cmd == "tune":
        spec = _load(args)
        from automodel.stages import tune_stage

        result = tune_stage(spec, args.out, resume=args.resume)
        print(
            f"best: {result.family} {result.metric}={result.score:.4f}  leaderboard: {Path(result.path).parent / 'leaderboard.csv'}"
        )
        return 0
    if cmd == "train":
        spec = _load(args)
        from automodel.stages import train_stage

        artifact = train_stage(spec, args.out)
        metric = artifact.card.metric
        print(
            f"trained {artifact.card.family}: test {metric} {artifact.card.metrics.test[metric]:.4f}  "
            f"artifact: {artifact.path}"
        )
        return 0
    # Stage commands set args.handler (a function taking args, returning an exit code).
    return args.handler(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
