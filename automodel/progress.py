"""Progress lines for long work: stage by stage, quiet for jobs and CI when asked."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints ``[  12.3s] stage: message`` lines to stderr unless quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.start = time.time()

    def __call__(self, stage: str, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.time() - self.start:6.1f}s] {stage}: {message}",
                file=sys.stderr,
                flush=True,
            )
