"""`automodel report RUN_DIR`: (re)write a run directory's report.html."""

from __future__ import annotations


def add_parsers(sub) -> None:
    s = sub.add_parser("report", help="write RUN_DIR/report.html from what the run directory holds")
    s.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory (from run, tune or train): a local path or a URI (s3://...)",
    )
    s.set_defaults(handler=_report)


def _report(args) -> int:
    from automodel import storage
    from automodel.report import write_report

    run_dir = args.run_dir
    if storage.is_uri(run_dir):  # read into this node's staging folder, written back with it
        run_dir = storage.stage(run_dir, download_existing=True)
    path = write_report(run_dir)
    published = storage.publish(run_dir)  # None: a local run directory
    print(f"report: {storage.join(published, path.name) if published else path}")
    return 0
