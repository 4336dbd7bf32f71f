"""File sources: a file, a directory, a glob or a list of Parquet/CSV files, read with Ray Data.

``resolve_files`` turns ``data.source`` into a :class:`FileSet` on the driver (file names and
sizes only, never rows); ``read_files`` reads it as a Ray Dataset, in parallel tasks on the
cluster's nodes, never collected on the driver. Local paths, NFS mounts and object storage
(``s3://``, ``gs://``, ... through ``pyarrow.fs``) all work the same way.

    files = resolve_files("s3://bucket/table/*.parquet")
    ds = read_files(files)                   # ray.data.read_parquet over the set
    ds = read_files(files, positions=True)   # plus FILE_COLUMN / ROW_COLUMN: a stable row key
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automodel.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import ray.data

__all__ = [
    "FILE_COLUMN",
    "ROW_COLUMN",
    "FileSet",
    "is_file_source",
    "parquet_rows",
    "read_files",
    "reading",
    "read_schema",
    "resolve_files",
]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv"}
FILE_COLUMN = "__file"  # with positions=True: the file's name relative to the set's root
ROW_COLUMN = "__row"  # with positions=True: the row's position in its file (0-based)
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class FileSet:
    """The files a source names, all of one format, on one filesystem.

    Attributes:
        source: the source as the user wrote it (for messages).
        paths: paths on ``filesystem`` (no scheme), sorted.
        format: ``"parquet"`` or ``"csv"``.
        filesystem: the ``pyarrow.fs.FileSystem`` that reads them (picklable, so tasks on any
            node open the same files).
        sizes: bytes on disk of each file.
        names: each file's path relative to the set's root (the directory, the glob's fixed
            prefix, or the files' common folder): a file's identity that survives moving the
            whole set, used with the row position as the default row key.
    """

    source: str
    paths: tuple[str, ...]
    format: str
    filesystem: Any
    sizes: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return int(sum(self.sizes))

    @property
    def multi(self) -> bool:
        """More than one file (a directory, glob or list always streams)."""
        return len(self.paths) > 1

    def subset(self, indices: Sequence[int]) -> FileSet:
        """The same set restricted to ``indices`` (e.g. one training worker's files)."""
        idx = list(indices)
        return FileSet(
            self.source,
            tuple(self.paths[i] for i in idx),
            self.format,
            self.filesystem,
            tuple(self.sizes[i] for i in idx),
            tuple(self.names[i] for i in idx),
        )

    def __len__(self) -> int:
        return len(self.paths)


def is_file_source(source: str | Sequence[str]) -> bool:
    """True for paths, URIs, globs and lists; False for ``builtin:`` and ``synthetic:``."""
    if isinstance(source, str):
        return not source.startswith(("builtin:", "synthetic:"))
    return True


def resolve_files(source: str | Sequence[str]) -> FileSet:
    """The file set a ``data.source`` names.

    Args:
        source: a file, a directory (all Parquet/CSV files below it, hidden and ``_``-prefixed
            names skipped), a glob (``data/*.parquet``, ``s3://b/t/**/*.csv``) or a list of
            files, local or a URI that ``pyarrow.fs`` understands.

    Raises:
        DataError: no file matches, formats are mixed, the filesystems differ, or a file
            has an extension other than .parquet/.pq/.csv.
    """
    items = [source] if isinstance(source, str) else list(source)
    if not items:
        raise DataError("data.source: an empty list of files")
    label = (
        source
        if isinstance(source, str)
        else f"[{', '.join(items[:3])}{', ...' if len(items) > 3 else ''}]"
    )
    fs, found, roots = None, [], []
    for item in items:
        item_fs, path = _filesystem(item)
        if fs is None:
            fs = item_fs
        elif item_fs.type_name != fs.type_name:
            raise DataError(
                f"data.source: all files must be on one filesystem, got {fs.type_name} and {item_fs.type_name}"
            )
        matched, root = _expand(fs, path, item)
        found += matched
        roots.append(root)
    if not found:
        raise DataError(f"data.source: no Parquet or CSV files match {label}")
    found = sorted(set(found), key=lambda f: f[0])
    formats = sorted({_format(p) for p, _ in found})
    if len(formats) > 1:
        raise DataError(
            f"data.source: mixed file formats ({' and '.join(formats)}) in {label}; use one format"
        )
    if len(items) == 1:
        root = roots[0]
    else:  # a list: names relative to the files' common folder
        root = posixpath.commonpath([posixpath.dirname(p) for p, _ in found])
    names = tuple(posixpath.relpath(p, root) if root else posixpath.basename(p) for p, _ in found)
    return FileSet(
        source=label,
        paths=tuple(p for p, _ in found),
        format=formats[0],
        filesystem=fs,
        sizes=tuple(s for _, s in found),
        names=names,
    )


def read_files(
    files: FileSet,
    *,
    columns: list[str] | None = None,
    positions: bool = False,
    include_paths: bool = False,
) -> ray.data.Dataset:
    """The file set as a lazy Ray Dataset: read by tasks on the cluster, never on the driver.

    Args:
        files: what :func:`resolve_files` returned.
        columns: read only these columns (Parquet reads no others from disk).
        positions: add ``FILE_COLUMN`` (the file's name in the set) and ``ROW_COLUMN`` (the
            row's position in that file). Rows then come one read task per file, in file
            order within a task; without it ``ray.data.read_parquet`` / ``read_csv`` split
            the files as they like.
        include_paths: add Ray's ``path`` column (the full path), without positions.

    Reading is lazy: an unreadable file surfaces when the dataset executes; wrap the
    consuming call in :func:`reading` for a one-line ``DataError``.
    """
    import ray.data

    if positions:
        return ray.data.read_datasource(
            _PositionedFiles(files, columns), override_num_blocks=len(files)
        )
    paths = list(files.paths)
    if files.format == "parquet":
        return ray.data.read_parquet(
            paths,
            filesystem=files.filesystem,
            columns=columns,
            include_paths=include_paths,
            file_extensions=None,
        )
    ds = ray.data.read_csv(
        paths,
        filesystem=files.filesystem,
        include_paths=include_paths,
        convert_options=_csv_convert(files, columns),
    )
    return ds


def read_schema(files: FileSet) -> pa.Schema:
    """The columns and types of the set (the first file's; Parquet footers, CSV's first block).

    Raises:
        DataError: the first file cannot be read as its format.
    """
    import pyarrow as pa

    path = files.paths[0]
    try:
        if files.format == "parquet":
            import pyarrow.parquet as pq

            with files.filesystem.open_input_file(path) as f:
                return pq.read_schema(f)
        return _csv_schema(files.filesystem, path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"data.source: cannot read {_uri(files, path)}: {_first_line(exc)}"
        ) from None


def parquet_rows(files: FileSet) -> int | None:
    """Rows in the set from the Parquet footers (no data read); None for CSV."""
    if files.format != "parquet":
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    for path in files.paths:
        try:
            with files.filesystem.open_input_file(path) as f:
                total += pq.ParquetFile(f).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise DataError(
                f"data.source: cannot read {_uri(files, path)}: {_first_line(exc)}"
            ) from None
    return total


class reading:  # noqa: N801 - used as a context manager, reads like a verb
    """Turns a failure while a Ray Dataset over ``files`` executes into a one-line DataError.

    with reading(files):
        stats = ds.map_batches(...).take_all()
    """

    def __init__(self, files: FileSet):
        self.files = files

    def __enter__(self) -> reading:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, KeyboardInterrupt):
            return False
        cause = exc
        while getattr(cause, "cause", None) is not None or cause.__cause__ is not None:
            cause = getattr(cause, "cause", None) or cause.__cause__
        if isinstance(
            cause, DataError
        ):  # raised in a read task: Ray wraps it with the task's traceback
            raise DataError(_first_line(cause)) from None
        if type(exc) is DataError:
            return False
        text = str(exc)
        culprit = next((p for p in self.files.paths if p in text), None)
        where = _uri(self.files, culprit) if culprit else self.files.source
        raise DataError(f"data.source: cannot read {where}: {_first_line(cause)}") from None


# ---- resolving ---------------------------------------------------------------------------------
def _filesystem(item: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    if "://" not in item:
        import os

        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(item))
    scheme, _, rest = item.partition("://")
    try:
        if _is_pattern(rest):  # from_uri would look the pattern up as a path
            fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{rest.split('/', 1)[0]}")
            path = rest if scheme != "file" else "/" + rest.lstrip("/")
            return fs, path
        return pafs.FileSystem.from_uri(item)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataError(f"data.source: cannot open {item}: {_first_line(exc)}") from None


def _is_pattern(path: str) -> bool:
    return any(ch in path for ch in GLOB_CHARS)


def _expand(fs, path: str, label: str) -> tuple[list[tuple[str, int]], str]:
    """(path, size) of the data files ``path`` names, and the root their names are relative to."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        if _is_pattern(path):
            parts = path.split("/")
            fixed = next(i for i, part in enumerate(parts) if _is_pattern(part))
            base = "/".join(parts[:fixed]) or ("/" if path.startswith("/") else ".")
            deep = "**" in path or fixed < len(parts) - 1
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=deep, allow_not_found=True))
            pattern = path.replace("**/", "*").replace("**", "*")
            hits = [
                (i.path, i.size)
                for i in infos
                if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, pattern)
            ]
            return [(p, s) for p, s in hits if _data_file(p, base)], base
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            tried = f" (looked for {path})" if fs.type_name == "local" and path != label else ""
            raise DataError(f"data.source: no such file or directory: {label}{tried}")
        if info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
            hits = [
                (i.path, i.size)
                for i in infos
                if i.type == pafs.FileType.File and _data_file(i.path, path)
            ]
            return hits, path
        if _format(path, strict=False) is None:
            raise DataError(f"data.source: expected a .csv or .parquet file, got {label}")
        return [(info.path, info.size)], posixpath.dirname(info.path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"data.source: cannot list {label}: {_first_line(exc)}") from None


def _data_file(path: str, root: str) -> bool:
    """A Parquet/CSV file not hidden below ``root``: no name under it starts with "." or "_"
    (Spark's _SUCCESS, _temporary/, .crc files); hive partitions (``_key=value``) count."""
    rel = posixpath.relpath(path, root) if root not in ("", ".") else path
    hidden = any(p.startswith((".", "_")) and "=" not in p for p in rel.split("/"))
    return not hidden and _format(path, strict=False) is not None


def _format(path: str, strict: bool = True) -> str | None:
    ext = posixpath.splitext(path.lower())[1]
    fmt = FORMATS.get(ext)
    if fmt is None and strict:
        raise DataError(f"data.source: expected a .csv or .parquet file, got {path}")
    return fmt


def _uri(files: FileSet, path: str) -> str:
    kind = files.filesystem.type_name
    return path if kind == "local" else f"{kind}://{path}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ---- CSV ---------------------------------------------------------------------------------------
def _csv_schema(fs, path: str) -> pa.Schema:
    import pyarrow.csv as pacsv

    with fs.open_input_stream(path) as f:
        reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 20))
        return _widen(reader.schema)


def _widen(schema: pa.Schema) -> pa.Schema:
    """Integers read as float64 and all-null columns as strings: another file's block may hold
    a fraction or a missing value where the first block had none, and a set needs one schema."""
    import pyarrow as pa

    fields = []
    for f in schema:
        if pa.types.is_integer(f.type):
            f = f.with_type(pa.float64())
        elif pa.types.is_null(f.type):
            f = f.with_type(pa.string())
        fields.append(f)
    return pa.schema(fields)


def _csv_convert(files: FileSet, columns: list[str] | None):
    import pyarrow.csv as pacsv

    schema = read_schema(files)
    return pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema},
        include_columns=columns,
    )


# ---- reading with row positions -----------------------------------------------------------------
def _read_positioned(files: FileSet, index: int, columns: list[str] | None, schema):
    """One file's rows in order, in blocks, each with its file name and row positions."""
    import numpy as np
    import pyarrow as pa

    path, name = files.paths[index], files.names[index]
    start = 0
    try:
        if files.format == "parquet":
            import pyarrow.parquet as pq

            with files.filesystem.open_input_file(path) as f:
                pf = pq.ParquetFile(f)
                for batch in pf.iter_batches(batch_size=65536, columns=columns):
                    table = pa.Table.from_batches([batch])
                    yield _with_position(table, name, start, np, pa)
                    start += table.num_rows
        else:
            import pyarrow.csv as pacsv

            convert = pacsv.ConvertOptions(
                column_types={f.name: f.type for f in schema}, include_columns=columns
            )
            with files.filesystem.open_input_stream(path) as f:
                reader = pacsv.open_csv(
                    f, convert_options=convert, read_options=pacsv.ReadOptions(block_size=8 << 20)
                )
                for batch in reader:
                    table = pa.Table.from_batches([batch])
                    yield _with_position(table, name, start, np, pa)
                    start += table.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"data.source: cannot read {_uri(files, path)}: {_first_line(exc)}"
        ) from None


def _with_position(table, name: str, start: int, np, pa):
    n = table.num_rows
    table = table.append_column(FILE_COLUMN, pa.array([name] * n, pa.string()))
    return table.append_column(ROW_COLUMN, pa.array(np.arange(start, start + n, dtype=np.int64)))


def _positioned_datasource():
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class PositionedFiles(Datasource):
        """One read task per file (Ray's public Datasource API), so positions are the file's."""

        def __init__(self, files: FileSet, columns: list[str] | None):
            super().__init__()
            self.files, self.columns = files, columns
            self.schema = read_schema(files) if files.format == "csv" else None

        def estimate_inmemory_data_size(self) -> int:
            return self.files.total_bytes * (3 if self.files.format == "parquet" else 1)

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
            tasks = []
            for i, size in enumerate(self.files.sizes):
                one = self.files.subset([i])  # a task ships its own file, not the whole list
                meta = BlockMetadata(
                    num_rows=None, size_bytes=size, input_files=[one.paths[0]], exec_stats=None
                )
                tasks.append(
                    ReadTask(
                        functools.partial(_read_positioned, one, 0, self.columns, self.schema), meta
                    )
                )
            return tasks

    return PositionedFiles


def _PositionedFiles(files: FileSet, columns: list[str] | None):  # noqa: N802 - a class factory
    return _positioned_datasource()(files, columns)
