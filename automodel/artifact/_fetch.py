"""Artifact files and their hashes; an artifact at a URI read into this node's cache.

The card lists every other file with its sha256 (``card.files``). A reader checks them before use,
so a truncated upload or an altered byte is one clear error instead of a model that loads wrong.
The cache (``<AUTOMODEL_CACHE or ~/.cache/automodel>/artifacts/<hash of card.json>``) is keyed by
content: the card carries every file's hash, so the same card means the same files, and a new
version of the artifact at the same URI gets a new folder. A folder appears whole (renamed into
place after its files are checked) or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from automodel import storage
from automodel.contracts import Card
from automodel.contracts._card import FileHash
from automodel.errors import ArtifactError

# what write_artifact hashes into the card (card.json itself is written after them)
HASHED = ("model.onnx", "preprocess.json", "weights.safetensors")
FIX = "copy the whole artifact again, or re-create it"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(folder: Path, names: list[str]) -> dict[str, FileHash]:
    return {
        n: FileHash(sha256=sha256_of(folder / n), size_bytes=(folder / n).stat().st_size)
        for n in names
    }


def verify(folder: Path, card: Card, *, shown: str | Path) -> None:
    """Every file the card lists is there, with the bytes it was written with.

    Raises:
        ArtifactError: one line naming the artifact, the file and the fix.
    """
    for name, want in (card.files or {}).items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"artifact {shown} is incomplete: {name} is missing; {FIX}")
        size = path.stat().st_size
        if size != want.size_bytes or sha256_of(path) != want.sha256:
            raise ArtifactError(
                f"artifact {shown}: {name} does not match card.json ({size} bytes, expected "
                f"{want.size_bytes} with sha256 {want.sha256[:12]}…): it was altered or "
                f"truncated; {FIX}"
            )


def local_copy(uri: str) -> Path:
    """This node's checked copy of the artifact at ``uri`` (downloaded once per content)."""
    shown = storage.display(uri)
    card_uri = storage.join(uri, "card.json")
    try:
        raw = storage.read_bytes(card_uri)
    except storage.StorageError as exc:
        if not storage.exists(uri):
            raise ArtifactError(f"artifact not found: {shown} does not exist") from None
        if not storage.exists(card_uri):
            raise ArtifactError(
                f"artifact {shown} is incomplete: card.json is missing (it is written last: the "
                "artifact was never finished, or is still being written)"
            ) from None
        raise ArtifactError(f"artifact {shown}: {exc}") from None
    try:
        card = Card.load(json.loads(raw), source=card_uri)
    except ValueError:
        raise ArtifactError(f"{storage.display(card_uri)}: not JSON; {FIX}") from None
    root = storage.cache_root() / "artifacts"
    final = root / hashlib.sha256(raw).hexdigest()[:32]
    if (final / "card.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}-"))
    try:
        names = list(card.files) if card.files else _listed(uri)
        storage.download(uri, tmp, names=names)
        verify(tmp, card, shown=shown)
        (tmp / "card.json").write_bytes(raw)  # last: a folder with a card is a whole one
        try:
            os.replace(tmp, final)
        except OSError:  # another process on this node put the same content there first
            if not (final / "card.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _listed(uri: str) -> list[str]:
    return [n for n in storage.listdir(uri, recursive=True) if n != "card.json"]
