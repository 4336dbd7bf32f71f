"""A small input scored in this process: the Ray Data path's reader, scorer and part writer,
without a Ray start.

Starting a local Ray and a pool of prediction actors costs seconds (5-20 s on two busy cores)
before the first row is read; a few thousand rows score in milliseconds. So an input on local
disk of at most ``LOCAL_BYTES``, with no cluster or actor pool shape asked for, is read file by
file with the same reader (:func:`automodel.predict._read._read_file`, every file against one
schema), scored by the actor's own :class:`~automodel.predict._scorer.BatchScorer` in batches of
``batch_size`` and written by the sink's :class:`~automodel.predict._parts.PartWriter`: the same
encoding, predictions, refusals and files as the Ray Data path.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from automodel.predict._parts import ERRORS_DIR, PartWriter

# ~100 k rows of a typical CSV: scored here in a few seconds, about a Ray start's cost.
LOCAL_BYTES = 16 << 20


def runs_here(
    files: Any,
    *,
    address: str | None,
    concurrency: int | None,
    num_cpus: float,
    num_gpus: float,
) -> bool:
    """Whether to score in this process rather than on Ray Data: a small local input, and no
    cluster or actor shape asked for (``--concurrency``, ``--num-cpus``, ``--num-gpus`` size
    Ray Data's actor pool, and are checked against the cluster there)."""
    return (
        address is None
        and not os.environ.get("RAY_ADDRESS")  # a job on a cluster scores on the cluster
        and concurrency is None
        and num_cpus == 1.0
        and not num_gpus
        and files.filesystem.type_name == "local"
        and files.total_bytes <= LOCAL_BYTES
    )


def score_here(
    art: Any,
    files: Any,
    types: dict,
    numeric: set[str],
    required: set[str],
    kept: list[str],
    added: list[str],
    fs: Any,
    out_path: str,
    *,
    probabilities: bool,
    batch_size: int,
    say: Any,
) -> tuple[dict, list[dict]]:
    """Read, score and write ``files``; ``{"rows", "errors", "files"}`` and the one "actor"."""
    from automodel.data._files import reading
    from automodel.predict._read import _read_file
    from automodel.predict._scorer import BatchScorer, ModelFiles

    say(
        "predict",
        f"scoring {len(files)} {files.format} file(s) from {files.source} in this process "
        f"(under {LOCAL_BYTES >> 20} MB: no Ray start)",
    )
    t0 = time.time()
    scorer = BatchScorer(ModelFiles.of(art), kept, probabilities, cpus=1.0)
    text = numeric if files.format == "csv" else set()  # as read_input: parsed row by row
    fs.create_dir(f"{out_path}/{ERRORS_DIR}", recursive=True)  # as the sink's on_write_start
    name = f"part-{uuid.uuid4().hex[:8]}-000000.parquet"
    with reading(files), PartWriter(fs, out_path, name, added) as part:
        for path in files.paths:
            for table in _read_file(files, path, types, text, required):
                for offset in range(0, table.num_rows, batch_size):
                    part.write(scorer(table.slice(offset, batch_size)))
    result = part.counts()
    rows = result["rows"] + result["errors"]
    say(
        "predict",
        f"read {rows:,}  scored {result['rows']:,}  refused {result['errors']:,}  "
        f"written {rows:,}  {rows / max(1e-9, time.time() - t0):,.0f} rows/s",
    )
    actor = {"node": "local", "provider": scorer.provider, "cpus": 1.0, "rows": rows}
    return result, [actor]
