"""Run directories in object storage: written in a local staging folder, published to the URI.

Ray Tune, the journal and the report write ordinary files; when the run directory is a URI they
write them into a staging folder on this node (``<cache>/runs/<hash of the URI>/<last part>``)
that remembers its URI in a marker file, and :func:`publish` copies the folder to the URI — the
artifact's ``card.json`` last, so an artifact there appears whole or not at all. ``tune --resume``
on a fresh head stages the URI again with ``download=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from automodel.storage._paths import (
    Location,
    basename,
    delete,
    download,
    exists,
    is_uri,
    join,
    listdir,
    read_bytes,
    resolve,
    write_bytes,
)

MARKER = ".automodel-remote"  # in a staging folder: the URI it publishes to
CARD = "artifact/card.json"
PUBLISH_EVERY_S = 30.0  # while a run works: what a new head needs to resume is at most this old
_LOCK = threading.Lock()  # one publish at a time (the periodic one and the final one)


def cache_root() -> Path:
    """This node's cache: ``$AUTOMODEL_CACHE``, else ``~/.cache/automodel``."""
    return Path(os.environ.get("AUTOMODEL_CACHE") or Path.home() / ".cache" / "automodel")


def stage(uri: str, *, download_existing: bool = False) -> Path:
    """The local staging folder of run directory ``uri`` (made, marked; filled from ``uri`` when
    ``download_existing``)."""
    uri = str(resolve(uri))
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    local = cache_root() / "runs" / key / basename(uri)
    local.mkdir(parents=True, exist_ok=True)
    if download_existing and exists(uri):
        download(uri, local)
    (local / MARKER).write_text(uri)
    return local


def remote_of(run_dir: Location) -> str | None:
    """The URI a staging folder publishes to; None for an ordinary local run directory."""
    if is_uri(run_dir):
        return str(run_dir)
    marker = Path(run_dir) / MARKER
    return marker.read_text().strip() if marker.is_file() else None


def location_of(run_dir: Location) -> str | Path:
    """Where a run directory lives for a user: its URI when staged, else the path itself."""
    return remote_of(run_dir) or Path(run_dir)


def publish(run_dir: Location) -> str | None:
    """Copy a staging folder to its URI (nothing for a local run directory); returns the URI.

    Files unchanged since the last publish are not sent again. The artifact's ``card.json`` goes
    last, and a stale remote card is removed before the files it describes change, so a reader
    never sees a card next to files it does not match.
    """
    uri = None if is_uri(run_dir) else remote_of(run_dir)
    if uri is None:
        return None
    with _LOCK:
        _publish(Path(run_dir), uri)
    return uri


@contextlib.contextmanager
def publishing(run_dir: Location, every_s: float = PUBLISH_EVERY_S) -> Iterator[None]:
    """Publish a staging folder every ``every_s`` while the block runs, and once at its end
    (also when it fails: an interrupted sweep can be resumed from the URI). A local run
    directory: nothing."""
    if remote_of(run_dir) is None or is_uri(run_dir):
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(Exception):  # the next round (or the final one) retries
                publish(run_dir)

    thread = threading.Thread(target=loop, name="automodel-publish", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        stop.set()
        thread.join()
        with contextlib.suppress(Exception):  # the run's own error is the one to report
            publish(run_dir)
        raise
    stop.set()
    thread.join()
    publish(run_dir)


def _publish(local: Path, uri: str) -> None:
    sent = local / ".." / f".{local.name}.published"  # name -> (size, mtime) at the last publish
    seen = _read_seen(sent)
    names = [n for n in listdir(local, recursive=True) if n != MARKER]
    changed = [n for n in names if seen.get(n) != _stamp(local / n)]
    card_remote = join(uri, CARD)
    if any(n.startswith("artifact/") for n in changed) and exists(card_remote):
        if CARD not in names or read_bytes(card_remote) != (local / CARD).read_bytes():
            delete(card_remote)
            changed = sorted(set(changed) | {n for n in names if n.startswith("artifact/")})
    for name in sorted(n for n in changed if n != CARD) + [n for n in changed if n == CARD]:
        try:
            stamp, data = _stamp(local / name), (local / name).read_bytes()
        except FileNotFoundError:  # Tune renames its temp files: gone since the listing
            continue
        write_bytes(join(uri, name), data)
        seen[name] = stamp
    _write_seen(sent, seen)


def _stamp(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:  # gone since the listing (a renamed temp file)
        return "gone"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read_seen(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    rows = (line.rsplit("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return dict(rows)


def _write_seen(path: Path, seen: dict[str, str]) -> None:
    path.write_text("".join(f"{k}\t{v}\n" for k, v in sorted(seen.items())))
