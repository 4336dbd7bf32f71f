"""Artifacts: the only thing that crosses from training to serving.

``<dir>/model.onnx``, ``preprocess.json``, ``card.json`` and, for torch families,
``weights.safetensors``. Nothing in it is pickled: loading one never executes code.

An artifact appears whole or not at all: its files are written first, ``card.json`` last with
every file's sha256 (``card.files``), and a reader refuses one without a card or with a file whose
bytes differ. It may live at a local path or a URI (``s3://...``): one at a URI is read into this
node's cache (see :mod:`automodel.artifact._fetch`), keyed by its content hash.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automodel import storage
from automodel.artifact._fetch import HASHED, file_hashes, local_copy, verify
from automodel.contracts import Card
from automodel.data import Preprocessor
from automodel.errors import ArtifactError

__all__ = ["Artifact", "Card", "read_artifact", "write_artifact"]

CARD_HINT = "re-create the artifact with `automodel train` (or `automodel run`) of this version"


@dataclass
class Artifact:
    """A loaded artifact directory (files are read, not executed); ``card`` is the typed card."""

    path: Path
    card: Card
    preprocessor: Preprocessor
    location: str | Path | None = None  # where it was read from (a URI); None: ``path`` itself

    @property
    def source(self) -> str | Path:
        """Where every node finds it: the URI it came from, else its absolute local path."""
        return self.location if self.location is not None else self.path.resolve()

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def output_name(self) -> str:
        return self.card.output_name

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return str(self.card.version)


def _versions() -> dict[str, str]:
    import ray

    from automodel import __version__

    return {"automodel_version": __version__, "ray_version": ray.__version__}


def write_artifact(
    path: str | Path,  # or a URI: written in a local folder, then uploaded, card.json last
    *,
    onnx_bytes: bytes,
    output_name: str,
    preprocessor: Preprocessor,
    card: Card | dict[str, Any],
    state_dict: dict | None = None,
) -> Artifact:
    """Write an artifact directory; ``card`` is completed with versions, time and ONNX I/O names.

    The card is validated as a :class:`Card` before any file is written.
    """
    if storage.is_uri(path):
        return _write_remote(
            str(path),
            onnx_bytes=onnx_bytes,
            output_name=output_name,
            preprocessor=preprocessor,
            card=card,
            state_dict=state_dict,
        )
    path = Path(path)
    if isinstance(card, Card):
        card = card.model_dump(mode="json", exclude_none=True, exclude={"schema_version"})
    full = {
        "version": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "compression": None,
        **card,
        **_versions(),
        "schema_version": Card.SCHEMA_VERSION,
        "onnx": {"input": "input", "output": output_name, "size_bytes": len(onnx_bytes)},
    }
    if not full.get("features"):
        full["features"] = preprocessor.input_columns
    # Through JSON first: numpy scalars in params or summaries become plain numbers.
    typed = Card.load(
        json.loads(json.dumps(full, default=_json_default)), source=path / "card.json"
    )
    path.mkdir(parents=True, exist_ok=True)
    # an old card must not outlive the files it describes: gone first, written again last
    (path / "card.json").unlink(missing_ok=True)
    (path / "model.onnx").write_bytes(onnx_bytes)
    preprocessor.save(path / "preprocess.json")
    if state_dict is not None:
        from safetensors.torch import save_file

        save_file(
            {k: v.detach().contiguous().cpu() for k, v in state_dict.items()},
            str(path / "weights.safetensors"),
        )
    typed.files = file_hashes(path, [n for n in HASHED if (path / n).is_file()])
    (path / "card.json").write_text(typed.model_dump_json(indent=1))
    return Artifact(path, typed, preprocessor, _published_at(path))


def _write_remote(uri: str, **kwargs: Any) -> Artifact:
    """Write locally, then upload: every file first, card.json last (readers wait for it)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="automodel-artifact-") as tmp:
        written = write_artifact(tmp, **kwargs)
        if storage.exists(storage.join(uri, "card.json")):
            storage.delete(storage.join(uri, "card.json"))
        storage.upload(tmp, uri, last=("card.json",))
        del written
    return read_artifact(uri)  # through this node's cache, as every other reader


def read_artifact(path: str | Path) -> Artifact:
    """Open and check an artifact directory.

    Raises:
        ArtifactError: if the directory, a file, or its content is missing or corrupt.
    """
    location = None
    if storage.is_uri(path):  # into this node's cache, checked on the way in
        location, path = storage.resolve(path), local_copy(path)
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact not found: {path} is not a directory")
    if not (path / "card.json").is_file():
        raise ArtifactError(
            f"artifact {path} is incomplete: card.json is missing (it is written last: the "
            "artifact was never finished, or is still being written)"
        )
    for name in ("model.onnx", "preprocess.json"):
        if not (path / name).is_file():
            raise ArtifactError(f"artifact {path} is incomplete: {name} is missing")
    card = Card.read(path / "card.json", hint=CARD_HINT)
    verify(path, card, shown=location or path)
    prep = Preprocessor.load(path / "preprocess.json")
    check_onnx(path / "model.onnx")
    return Artifact(path, card, prep, location or _published_at(path))


def _published_at(path: Path) -> str | None:
    """The URI of an artifact in a run directory staged for object storage (else None)."""
    remote = storage.remote_of(path.parent)
    return None if remote is None else str(storage.join(remote, path.name))


def check_onnx(path: Path) -> None:
    """Parse model.onnx without running it; a truncated or corrupt file is an ArtifactError."""
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt protobufs
        raise ArtifactError(
            f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
