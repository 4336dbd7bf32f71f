"""Artifacts: the only thing that crosses from training to serving.

``<dir>/model.onnx``, ``preprocess.json``, ``card.json`` and, for torch families,
``weights.safetensors``. Nothing in it is pickled: loading one never executes code.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automodel.data import Preprocessor
from automodel.errors import ArtifactError

__all__ = ["Artifact", "read_artifact", "write_artifact", "CARD_KEYS"]

CARD_KEYS = ("name", "version", "task", "family", "params", "features", "classes", "metrics", "train",
             "compression", "data", "created", "automodel_version", "ray_version")


@dataclass
class Artifact:
    """A loaded artifact directory (files are read, not executed)."""

    path: Path
    card: dict[str, Any]
    preprocessor: Preprocessor

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def output_name(self) -> str:
        return self.card.get("onnx", {}).get("output", "probabilities" if self.card["task"] == "classification" else "prediction")

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def version(self) -> str:
        return str(self.card["version"])


def _versions() -> dict[str, str]:
    import ray

    from automodel import __version__

    return {"automodel_version": __version__, "ray_version": ray.__version__}


def write_artifact(path: str | Path, *, onnx_bytes: bytes, output_name: str, preprocessor: Preprocessor,
                   card: dict[str, Any], state_dict: dict | None = None) -> Artifact:
    """Write an artifact directory; ``card`` is completed with versions, time and ONNX I/O names."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.onnx").write_bytes(onnx_bytes)
    preprocessor.save(path / "preprocess.json")
    if state_dict is not None:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous().cpu() for k, v in state_dict.items()}, str(path / "weights.safetensors"))
    full = {
        "version": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "compression": None,
        **card,
        **_versions(),
        "onnx": {"input": "input", "output": output_name, "size_bytes": len(onnx_bytes)},
    }
    full.setdefault("features", preprocessor.input_columns)
    (path / "card.json").write_text(json.dumps(full, indent=1, default=_json_default))
    return Artifact(path, full, preprocessor)


def read_artifact(path: str | Path) -> Artifact:
    """Open and check an artifact directory.

    Raises:
        ArtifactError: if the directory, a file, or its content is missing or corrupt.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact not found: {path} is not a directory")
    for name in ("model.onnx", "card.json", "preprocess.json"):
        if not (path / name).is_file():
            raise ArtifactError(f"artifact {path} is incomplete: {name} is missing")
    try:
        card = json.loads((path / "card.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path / 'card.json'}: corrupt JSON ({exc})") from None
    if not isinstance(card, dict) or "task" not in card or "name" not in card:
        raise ArtifactError(f"{path / 'card.json'}: not a model card (needs name and task)")
    prep = Preprocessor.load(path / "preprocess.json")
    check_onnx(path / "model.onnx")
    return Artifact(path, card, prep)


def check_onnx(path: Path) -> None:
    """Parse model.onnx without running it; a truncated or corrupt file is an ArtifactError."""
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt protobufs
        raise ArtifactError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
