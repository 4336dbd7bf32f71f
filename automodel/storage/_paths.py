"""Local paths and URIs through one door: ``pyarrow.fs``.

A location is a local path (``runs/x``, ``/data/x``) or a URI that ``pyarrow.fs`` understands
(``s3://``, ``gs://``, ``hdfs://``, ``file://``). Credentials and endpoints come from the
environment as pyarrow reads them (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
``GOOGLE_APPLICATION_CREDENTIALS``, ...) and never appear in a message: :func:`display` strips any
``user:secret@`` a URI carries. Everything else in automodel goes through these functions: no
``Path()`` on a URI, no string surgery.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import IO

from automodel.errors import AutomodelError

Location = str | os.PathLike

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")


class StorageError(AutomodelError):
    """A location cannot be reached, read or written."""


def is_uri(location: Location) -> bool:
    """Whether ``location`` is a URI (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _SCHEME.match(location) is not None


def scheme(location: Location) -> str | None:
    """``s3`` for ``s3://b/k``; None for a local path."""
    m = _SCHEME.match(location) if isinstance(location, str) else None
    return m.group(1).lower() if m else None


def display(location: Location) -> str:
    """The location as messages show it: a URI's ``user:secret@`` part is never printed."""
    if not is_uri(location):
        return str(location)
    head, _, rest = str(location).partition("://")
    netloc, sep, path = rest.partition("/")
    return f"{head}://{netloc.rpartition('@')[2]}{sep}{path}"


def join(base: Location, *parts: str) -> str | Path:
    """``base / part / ...``: a URI stays a string (posix-joined), a local path becomes a Path."""
    if is_uri(base):
        return posixpath.join(str(base).rstrip("/"), *(p.strip("/") for p in parts))
    return Path(base).joinpath(*parts)


def basename(location: Location) -> str:
    """The last component (``m`` of ``s3://b/artifacts/m/``)."""
    if is_uri(location):
        return posixpath.basename(str(location).rstrip("/"))
    return Path(location).name


def parent(location: Location) -> str | Path:
    if is_uri(location):
        return posixpath.dirname(str(location).rstrip("/"))
    return Path(location).parent


def resolve(location: Location) -> str | Path:
    """A URI as given (without a trailing slash); a local path made absolute."""
    if is_uri(location):
        return str(location).rstrip("/")
    return Path(location).expanduser().resolve()


def filesystem(location: Location):
    """``(pyarrow.fs.FileSystem, path inside it)`` for a local path or a URI.

    Raises:
        StorageError: the scheme is unknown or the filesystem cannot be set up (one line).
    """
    import pyarrow as pa
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())
    uri = str(location).rstrip("/")
    if scheme(uri) == "s3" and "?" not in uri:
        # a small file goes up in one PutObject instead of a multipart upload: one round trip,
        # and S3-compatible stores that mishandle small multipart uploads (moto) work too
        uri += "?allow_delayed_open=true"
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise StorageError(f"cannot open {display(location)}: {_first_line(exc)}") from None
    return fs, path


def _info(location: Location):
    import pyarrow as pa

    fs, path = filesystem(location)
    try:
        return fs.get_file_info(path)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot reach {display(location)}: {_first_line(exc)}") from None


def exists(location: Location) -> bool:
    import pyarrow.fs as pafs

    return _info(location).type != pafs.FileType.NotFound


def is_dir(location: Location) -> bool:
    """A directory (or, in object storage, a prefix that holds objects)."""
    import pyarrow.fs as pafs

    return _info(location).type == pafs.FileType.Directory


def is_file(location: Location) -> bool:
    import pyarrow.fs as pafs

    return _info(location).type == pafs.FileType.File


def listdir(location: Location, *, recursive: bool = False) -> list[str]:
    """File names under ``location``, relative to it, sorted (``recursive``: every level, posix)."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, root = filesystem(location)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=recursive, allow_not_found=True))
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot list {display(location)}: {_first_line(exc)}") from None
    root = root.rstrip("/") + "/"
    return sorted(i.path[len(root) :] for i in infos if i.type == pafs.FileType.File)


def open_input(location: Location) -> IO[bytes]:
    """A binary stream to read ``location``."""
    import pyarrow as pa

    fs, path = filesystem(location)
    try:
        return fs.open_input_stream(path)
    except FileNotFoundError:
        raise StorageError(f"{display(location)} does not exist") from None
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read {display(location)}: {_first_line(exc)}") from None


def open_output(location: Location) -> IO[bytes]:
    """A binary stream that writes ``location`` (parents made; an object appears on close)."""
    import pyarrow as pa

    fs, path = filesystem(location)
    try:
        fs.create_dir(posixpath.dirname(path), recursive=True)
        return fs.open_output_stream(path)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot write {display(location)}: {_first_line(exc)}") from None


def read_bytes(location: Location) -> bytes:
    with open_input(location) as f:
        return f.read()


def write_bytes(location: Location, data: bytes) -> None:
    with open_output(location) as f:
        f.write(data)


def read_text(location: Location) -> str:
    return read_bytes(location).decode()


def write_text(location: Location, text: str) -> None:
    write_bytes(location, text.encode())


def delete(location: Location) -> None:
    """Remove a file or a whole directory (prefix); a missing one is fine."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, path = filesystem(location)
    kind = _info(location).type
    try:
        if kind == pafs.FileType.Directory:
            fs.delete_dir(path)
        elif kind == pafs.FileType.File:
            fs.delete_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot delete {display(location)}: {_first_line(exc)}") from None


def upload(local_dir: Location, dest: Location, *, last: tuple[str, ...] = ()) -> list[str]:
    """Copy every file under ``local_dir`` to ``dest`` (a URI or a path); files named in ``last``
    (relative paths) go after all others, so a reader that waits for them sees a whole tree.

    Returns the relative paths copied.
    """
    names = listdir(local_dir, recursive=True)
    ordered = [n for n in names if n not in last] + [n for n in last if n in names]
    for name in ordered:
        write_bytes(join(dest, name), Path(local_dir, name).read_bytes())
    return ordered


def download(source: Location, local_dir: Location, *, names: list[str] | None = None) -> list[str]:
    """Copy the files under ``source`` (or just ``names``) into ``local_dir``."""
    names = listdir(source, recursive=True) if names is None else names
    for name in names:
        target = Path(local_dir, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(join(source, name)))
    return names


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
