"""Score files with an artifact as a Ray job (`automodel predict`, on the cluster it runs on).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/predict.py runs/x/artifact s3://bucket/day/ --out s3://bucket/scores/ --id id

Joins the cluster in RAY_ADDRESS; prediction actors spread over its nodes. INPUT and OUTPUT must
be storage every node reaches (s3:// or NFS); the artifact is read here, on the job's driver, and
shipped to the actors. Same flags as `automodel predict`, plus --address.
"""

import sys

import _path  # noqa: F401  (first: the automodel that was sent wins over an installed one)

from automodel.predict._cli import job_main

if __name__ == "__main__":
    sys.exit(job_main())
