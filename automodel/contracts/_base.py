"""The base of every contract: a pydantic model with a ``schema_version``, and one loader.

A file written before contracts existed has no ``schema_version``: it reads as version 0 and
loads when its fields fit the model (every field added since is optional); otherwise, or when a
newer automodel wrote it, loading fails with one :class:`ArtifactError` that names the file and
says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from automodel.errors import ArtifactError

C = TypeVar("C", bound="Contract")


class Contract(BaseModel):
    """A versioned record that crosses a stage boundary.

    ``SCHEMA_VERSION`` is what this automodel writes; bump it when a field changes meaning or a
    required field is added, and say in ``load`` what an older version needs. Unknown fields are
    kept (``extra="allow"``): an automodel that adds one does not break an older reader.
    """

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    SCHEMA_VERSION: ClassVar[int] = 1
    schema_version: int = 1

    def to_json(self, **kwargs: Any) -> str:
        """The JSON a producer writes (every field, the schema version included)."""
        return self.model_dump_json(**kwargs)

    @classmethod
    def load(cls: type[C], raw: Any, *, source: str | Path, hint: str = "") -> C:
        """Validate ``raw`` (a parsed JSON object) read from ``source``.

        Raises:
            ArtifactError: ``raw`` is not this contract, or a newer automodel wrote it.
        """
        what = cls.__name__
        if not isinstance(raw, dict):
            raise ArtifactError(
                f"{source}: not a {what} (a JSON object was expected, got "
                f"{type(raw).__name__}){_hint(hint)}"
            )
        version = raw.get("schema_version", 0)  # files from before contracts carry no version
        if not isinstance(version, int) or version > cls.SCHEMA_VERSION:
            raise ArtifactError(
                f"{source}: written by a newer automodel ({what} schema_version "
                f"{version!r}, this one reads up to {cls.SCHEMA_VERSION}); upgrade "
                "automodel to read it"
            )
        try:
            return cls.model_validate({**raw, "schema_version": version})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise ArtifactError(
                f"{source}: not a valid {what} (schema_version {version}): {where}: "
                f"{err['msg']}{_hint(hint)}"
            ) from None

    @classmethod
    def read(cls: type[C], path: str | Path, *, hint: str = "") -> C:
        """Read and validate a JSON file; a missing or corrupt file is an ArtifactError."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing{_hint(hint)}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: corrupt JSON ({exc}){_hint(hint)}") from None
        return cls.load(raw, source=path, hint=hint)

    def write(self, path: str | Path, *, indent: int | None = None) -> Path:
        """Write the contract as JSON to ``path``."""
        path = Path(path)
        path.write_text(self.model_dump_json(indent=indent))
        return path


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""
