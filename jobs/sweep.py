"""The hyperparameter / family / feature search alone (--resume continues one), as a Ray job.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/sweep.py --spec configs/digits.yaml --out /shared/runs/digits [--resume]

Joins the cluster it runs on (RAY_ADDRESS), checks the spec's demands against the cluster's
resources first, then calls the same library functions as `automodel tune`.
"""

import sys
from pathlib import Path

# The submitted working directory's automodel wins over an installed one: the job runs the code
# that was sent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from automodel.cluster.launch import job_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(job_main("sweep"))
