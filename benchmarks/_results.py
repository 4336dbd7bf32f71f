"""Shared by every benchmark: machine/version header and one section of RESULTS.md each.

Each benchmark owns a section delimited by ``<!-- begin:NAME -->`` / ``<!-- end:NAME -->`` and
rewrites only that section, so benchmarks run in any order without clobbering each other.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the benchmark script it names; rerun it to refresh.\n"


def machine() -> str:
    """One line: date, CPU count, memory, Python and library versions."""
    import importlib

    versions = []
    for mod in ("ray", "torch", "sklearn", "onnxruntime", "optuna"):
        try:
            versions.append(f"{mod} {importlib.import_module(mod).__version__}")
        except ImportError:
            pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{dt.date.today().isoformat()}, {platform.machine()} {os.cpu_count()} cores, {mem:.0f} GiB, "
            f"Python {platform.python_version()}, " + ", ".join(versions))


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; floats rounded to 3 significant digits."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) section ``name`` of RESULTS.md, under a lock."""
    block = f"<!-- begin:{name} -->\n## {title}\n\n_{machine()}_\n\n{body.strip()}\n<!-- end:{name} -->"
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = RESULTS.read_text() if RESULTS.exists() else HEADER
        pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
        RESULTS.write_text(text)
