"""Imported first by every job script: the submitted working directory's automodel wins over an
installed one, so the job runs the code that was sent (``ray job submit --working-dir .``)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
