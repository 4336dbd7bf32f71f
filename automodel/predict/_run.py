"""``predict()``: score files with an artifact, streaming them through Ray Data.

    read (tasks) ─▶ map_batches(Scorer, actor pool) ─▶ PredictionSink (good rows, errors/)

The driver resolves the file names, checks the schema from the first file's footer or first block
(a column the model needs that the files lack fails here, in seconds, with one line), plans the
stream and prints progress from the tally actor; it never holds rows.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automodel.errors import AutomodelError, DataError

DEFAULT_BATCH_SIZE = 8192
# CPU share Ray reserves for a read or write task. They parse and encode Parquet in Arrow (the GIL
# released, mostly waiting on storage): at a whole CPU each, a pool with one actor a CPU leaves
# them none, and on a node of one CPU a read could never start beside an actor.
IO_CPUS = 0.25


@dataclass
class PredictSummary:
    """What a prediction run did; also written to ``OUTPUT/predict.json``.

    Attributes:
        rows: rows read from the input.
        scored: rows with a prediction in the output.
        errors: rows refused (their reasons are in ``OUTPUT/errors/``).
        wall_s: the whole call, Ray start included.
        rows_per_s: ``rows / wall_s``.
        files: input files read.
        output_files: Parquet files of predictions written (errors/ not counted).
        actors: one entry a prediction actor: its node id, execution provider, CPUs and rows.
    """

    rows: int
    scored: int
    errors: int
    wall_s: float
    rows_per_s: float
    model: str
    version: str
    artifact: str
    input: str
    out: str
    files: int
    output_files: int = 0
    actors: list[dict] = field(default_factory=list)

    @property
    def nodes(self) -> set[str]:
        """Ids of the Ray nodes that ran prediction actors."""
        return {a["node"] for a in self.actors}

    def line(self) -> str:
        return (
            f"predicted {self.scored:,} rows ({self.errors:,} refused, see {self.out}/errors/) "
            f"in {self.wall_s:.1f} s, {self.rows_per_s:,.0f} rows/s, model {self.model} "
            f"v{self.version}, {len(self.actors)} actor(s) on {len(self.nodes)} node(s): {self.out}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def predict(
    artifact: str | Path,
    input: str | list[str],
    out: str | Path,
    *,
    id: str | None = None,
    keep: list[str] | None = None,
    probabilities: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    address: str | None = None,
    overwrite: bool = False,
    progress: Any = None,
) -> PredictSummary:
    """Score Parquet or CSV files with an artifact; write Parquet predictions to ``out``.

    Args:
        artifact: an artifact directory (or a run directory holding ``artifact/``).
        input: a file, directory, glob or list of files, local or ``s3://...``.
        out: output directory (local, NFS or ``s3://``); on a multi-node cluster, storage every
            node can write.
        id: a column copied beside each prediction to identify the row.
        keep: input columns copied beside each prediction (with ``id``, after it). Neither
            given: every input column is kept, the prediction appended.
        probabilities: add one ``probability_<class>`` column a class (classification).
        batch_size: rows a prediction actor scores at once.
        concurrency: prediction actors (default: Ray Data scales the pool to the cluster).
        num_cpus: CPUs an actor reserves (ONNX Runtime threads follow).
        num_gpus: GPUs an actor reserves (ONNX Runtime's CUDA provider when it has one).
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else an embedded local Ray).
        overwrite: empty ``out`` first when it already holds files.
        progress: a callable ``(stage, message)`` for progress lines (default: none).

    Returns:
        the run's summary (also in ``out/predict.json``).

    Raises:
        DataError: the files lack a column the model needs (one line naming it), or cannot be
            read; ArtifactError: the artifact is missing or corrupt.
    """
    from automodel.artifact import read_artifact
    from automodel.data._files import read_schema, resolve_files
    from automodel.predict._encode import BatchEncoder, numeric_input_type
    from automodel.predict._parts import prediction_columns
    from automodel.predict._read import plan_types

    start = time.time()
    say = progress or (lambda stage, message: None)
    _check_options(batch_size, concurrency, num_cpus, num_gpus)
    from automodel import storage

    art_dir = artifact  # a local path or a URI; a run directory stands for its artifact/
    if storage.is_file(storage.join(artifact, "artifact", "card.json")):
        art_dir = storage.join(artifact, "artifact")
    art = read_artifact(art_dir)
    files = _input(resolve_files, input)
    schema = _input(read_schema, files)
    encoder = BatchEncoder(art.preprocessor)
    missing = encoder.missing(schema.names)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"input: column {missing[0]!r} is missing from {files.source}{more}; "
            f"the model takes {_names(encoder.columns)}, the files have {_names(schema.names)}"
        )
    for c in art.preprocessor.columns:
        t = schema.field(c.name).type
        if c.kind == "numeric" and not numeric_input_type(t):
            raise DataError(f"input: column {c.name!r}: expected numbers, the files have {t}")
    kept = _kept(id, keep, schema.names)
    added = prediction_columns(art.card["task"], art.card.get("classes"), probabilities)
    clash = [c for c in kept if c in added]
    if clash:
        raise DataError(
            f"--keep: column {clash[0]!r} would clash with an output column "
            f"({', '.join(added[:4])}); keep it under another name"
        )
    # every file read against one schema (files written by different hands differ in types)
    needed = list(dict.fromkeys([*encoder.columns, *kept]))
    numeric = {c.name for c in art.preprocessor.columns if c.kind == "numeric"}
    types = plan_types(files, schema, needed, numeric)
    fs, out_path, created = _output(str(out), overwrite)
    try:
        return _score(
            art,
            files,
            types,
            kept,
            added,
            fs,
            out_path,
            str(out),
            start,
            say,
            probabilities=probabilities,
            batch_size=batch_size,
            concurrency=concurrency,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            address=address,
        )
    except BaseException as exc:
        # nothing half-written stays behind: a folder made here goes, one given is left empty
        _clear_output(fs, out_path, created)
        if isinstance(exc, DataError):  # the data stage's reader speaks of data.source: INPUT here
            raise DataError(str(exc).replace("data.source:", "input:", 1)) from None
        raise


def _score(
    art,
    files,
    types: dict,
    kept: list[str],
    added: list[str],
    fs,
    out_path: str,
    out: str,
    start: float,
    say,
    *,
    probabilities: bool,
    batch_size: int,
    concurrency: int | None,
    num_cpus: float,
    num_gpus: float,
    address: str | None,
) -> PredictSummary:
    """The streamed part of :func:`predict`, once every check has passed and ``out`` exists."""
    from automodel.cluster._runtime import ray_session
    from automodel.predict._encode import BatchEncoder
    from automodel.predict._local import runs_here, score_here
    from automodel.predict._scorer import ModelFiles
    from automodel.spec import RuntimeSpec

    encoder = BatchEncoder(art.preprocessor)

    if runs_here(
        files, address=address, concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus
    ):
        # a small local input: scored in this process, no Ray start (see predict/_local.py)
        numeric = {c.name for c in art.preprocessor.columns if c.kind == "numeric"}
        result, actors = score_here(
            art,
            files,
            types,
            numeric,
            set(encoder.columns),
            kept,
            added,
            fs,
            out_path,
            probabilities=probabilities,
            batch_size=batch_size,
            say=say,
        )
        snap = {"actors": actors}
    else:
        runtime = RuntimeSpec(address=address or os.environ.get("RAY_ADDRESS"))
        with ray_session(runtime):
            import ray
            import ray.data

            from automodel.data._files import reading
            from automodel.predict._quiet import without_restart_notice
            from automodel.predict._read import read_input
            from automodel.predict._scorer import Scorer
            from automodel.predict._sink import PredictionSink
            from automodel.predict._tally import Tally

            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # our own line below, not tqdm bars on the driver
            ctx.print_on_execution_start = False
            _quiet_ray_data()
            _check_fits(num_cpus, num_gpus)
            tally = ray.remote(num_cpus=0)(Tally).remote()
            numeric = {c.name for c in art.preprocessor.columns if c.kind == "numeric"}
            ds = read_input(files, types, numeric, set(encoder.columns), IO_CPUS)
            scored = ds.map_batches(
                Scorer,
                fn_constructor_kwargs={
                    # Inside a list, the object ref reaches the actor as a ref: the model's bytes
                    # sit once in the object store, not in every actor's (restartable) arguments.
                    "model": [ray.put(ModelFiles.of(art))],
                    "keep": kept,
                    "probabilities": probabilities,
                    "tally": tally,
                    "use_gpu": num_gpus > 0,
                },
                batch_format="pyarrow",
                batch_size=batch_size,
                concurrency=concurrency,
                num_cpus=num_cpus,
                num_gpus=num_gpus or None,
                zero_copy_batch=True,
                # Ray Data places actor pools with SPREAD by default (DataContext.scheduling_strategy):
                # one actor a node before two on one, so a cluster's nodes all read and score.
            )
            sink = PredictionSink(fs, out_path, added, tally)
            say("predict", f"scoring {len(files)} {files.format} file(s) from {files.source}")
            with reading(files), without_restart_notice():
                _write_with_progress(scored, sink, tally, say, start)
            result = sink.result or {"rows": 0, "errors": 0, "files": 0}
            snap = _settled(tally, result["rows"] + result["errors"])
    wall = time.time() - start
    rows = result["rows"] + result["errors"]
    summary = PredictSummary(
        rows=rows,
        scored=result["rows"],
        errors=result["errors"],
        wall_s=round(wall, 3),
        rows_per_s=round(rows / wall, 1) if wall > 0 else 0.0,
        model=art.name,
        version=art.version,
        artifact=str(art.source),
        input=files.source,
        out=out,
        files=len(files),
        output_files=result["files"],
        actors=snap["actors"],
    )
    with fs.open_output_stream(f"{out_path}/predict.json") as f:
        f.write(json.dumps(summary.to_dict(), indent=1).encode())
    return summary


def _write_with_progress(ds, sink, tally, say, start: float, every: float = 5.0) -> None:
    """Run the write in a thread; print rows read / scored / written every few seconds."""
    import ray

    failure: list[BaseException] = []

    def work():
        try:
            with warnings.catch_warnings():
                # Ray 2.60's write_datasink has no named num_cpus yet, only the dict it warns on.
                warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
                ds.write_datasink(sink, ray_remote_args={"num_cpus": IO_CPUS})
        except BaseException as exc:  # re-raised on the calling thread
            failure.append(exc)

    def line(s: dict) -> None:
        rate = s["read"] / max(1e-9, time.time() - t0)
        say(
            "predict",
            f"read {s['read']:,}  scored {s['scored']:,}  refused {s['errors']:,}  "
            f"written {s['written']:,}  {rate:,.0f} rows/s",
        )

    thread = threading.Thread(target=work, name="automodel-predict", daemon=True)
    thread.start()
    t0 = time.time()
    while thread.is_alive():
        thread.join(every)
        if thread.is_alive():
            line(ray.get(tally.snapshot.remote()))
    if failure:
        raise failure[0]
    # The last line counts every row, however short the write was.
    if sink.result:
        line(_settled(tally, sink.result["rows"] + sink.result["errors"]))


# ---- helpers -----------------------------------------------------------------------------------
def _settled(tally, rows: int, wait_s: float = 10.0) -> dict:
    """The tally once every actor's last report has landed (they are fire-and-forget)."""
    import ray

    deadline = time.time() + wait_s
    while True:
        snap = ray.get(tally.snapshot.remote())
        if snap["read"] >= rows or time.time() > deadline:
            return snap
        time.sleep(0.2)


def _check_fits(num_cpus: float, num_gpus: float) -> None:
    """An actor no node can hold would make Ray Data wait forever: say so now."""
    import ray

    from automodel.errors import ResourceError

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if num_cpus > cpus:
        raise ResourceError(
            f"--num-cpus: a prediction actor needs {num_cpus:g} CPU(s), the largest node has {cpus:g}"
        )
    if num_gpus > gpus:
        raise ResourceError(
            f"--num-gpus: a prediction actor needs {num_gpus:g} GPU(s), the largest node has {gpus:g}"
        )
    if sum(n.get("CPU", 0.0) for n in nodes) < num_cpus + IO_CPUS:
        raise ResourceError(
            f"--num-cpus: {num_cpus:g} CPU(s) an actor leaves none for reading and writing "
            f"({IO_CPUS} CPU a task) on this cluster; lower it"
        )


class _DropNotice(logging.Filter):
    """Ray Data warns that its bars are off; they are, on purpose: progress is ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Progress bars disabled" not in record.getMessage()


def _quiet_ray_data() -> None:
    log = logging.getLogger("ray.data")
    # INFO lines per execution ("execution finished", "data sink finished"): the summary says it.
    log.setLevel(max(log.level, logging.WARNING))
    if not any(isinstance(f, _DropNotice) for f in log.filters):
        log.addFilter(_DropNotice())
    for name in ("ray.data._internal.progress",):
        logging.getLogger(name).addFilter(_DropNotice())


def _check_options(batch_size: int, concurrency: int | None, num_cpus: float, num_gpus: float):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AutomodelError(f"--batch-size: must be an integer >= 1, got {batch_size!r}")
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise AutomodelError(f"--concurrency: must be an integer >= 1, got {concurrency!r}")
    if not num_cpus > 0 or not math.isfinite(num_cpus):
        raise AutomodelError(f"--num-cpus: must be > 0, got {num_cpus!r}")
    if not num_gpus >= 0 or not math.isfinite(num_gpus):
        raise AutomodelError(f"--num-gpus: must be >= 0, got {num_gpus!r}")


def _input(fn, arg):
    """The data stage's reader speaks of ``data.source``; here the files are INPUT."""
    try:
        return fn(arg)
    except DataError as exc:
        raise DataError(str(exc).replace("data.source:", "input:", 1)) from None


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def _kept(id: str | None, keep: list[str] | None, names: list[str]) -> list[str]:
    if id is None and not keep:
        return list(names)
    kept = list(dict.fromkeys([*([id] if id else []), *(keep or [])]))
    for c in kept:
        if c not in names:
            flag = "--id" if c == id else "--keep"
            raise DataError(f"{flag}: column {c!r} is not in the files; they have {_names(names)}")
    return kept


def _output(out: str, overwrite: bool):
    """The output directory's filesystem and path; refuse one that already holds files."""
    import pyarrow.fs as pafs

    from automodel import storage

    fs, path = storage.filesystem(out)  # a local path or a URI (s3://, gs://, ...)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise DataError(f"--out: {out} is a file; give a directory")
    if info.type == pafs.FileType.Directory:
        inside = fs.get_file_info(pafs.FileSelector(path, recursive=False))
        if inside and not overwrite:
            raise DataError(
                f"--out: {out} already holds files; choose a new directory or pass --overwrite"
            )
        if inside:
            fs.delete_dir_contents(path)
    fs.create_dir(path, recursive=True)
    return fs, path, info.type == pafs.FileType.NotFound


def _clear_output(fs, path: str, created: bool) -> None:
    """After a failure: remove the output folder this run made, or empty the one it was given."""
    try:
        if created:
            fs.delete_dir(path)
        else:
            fs.delete_dir_contents(path, missing_dir_ok=True)
    except OSError:  # best effort: the failure being raised is what the user needs to see
        pass
