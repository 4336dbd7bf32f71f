"""The hyperparameter / family / feature search alone (--resume continues one), as a Ray job.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/sweep.py --spec configs/digits.yaml --out /shared/runs/digits [--resume]

Joins the cluster it runs on (RAY_ADDRESS), checks the spec's demands against the cluster's
resources first, then calls the same library functions as `automodel tune`.
"""

import sys

import _path  # noqa: F401  (first: the automodel that was sent wins over an installed one)

from automodel.cluster.launch import job_main

if __name__ == "__main__":
    sys.exit(job_main("sweep"))
