"""Score files with an artifact as a Ray job (`automodel predict`, on the cluster it runs on).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/predict.py runs/x/artifact s3://bucket/day/ --out s3://bucket/scores/ --id id

Joins the cluster in RAY_ADDRESS; prediction actors spread over its nodes. INPUT and OUTPUT must
be storage every node reaches (s3:// or NFS); the artifact is read here and shipped to the actors.
"""

import sys
from pathlib import Path

# The submitted working directory's automodel wins over an installed one: the job runs the code
# that was sent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from automodel.predict._cli import job_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(job_main())
