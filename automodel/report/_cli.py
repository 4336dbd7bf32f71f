"""`automodel report RUN_DIR`: (re)write a run directory's report.html."""

from __future__ import annotations


def add_parsers(sub) -> None:
    s = sub.add_parser("report", help="write RUN_DIR/report.html from what the run directory holds")
    s.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (from run, tune or train)")
    s.set_defaults(handler=_report)


def _report(args) -> int:
    from automodel.report import write_report

    path = write_report(args.run_dir)
    print(f"report: {path}")
    return 0
