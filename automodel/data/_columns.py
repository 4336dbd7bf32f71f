"""Columns a spec names (data.target, data.key, data.drop) checked against the data's columns.

One message for every such key: what was named, the column it most likely means (a case or
spelling slip: ``purchase`` for ``Purchase``), and the columns there are.
"""

from __future__ import annotations

from collections.abc import Sequence

from automodel.errors import SpecError
from automodel.spec import nearest_name

DROPPED_BY_SPEC = "left out by the spec (data.drop)"  # the reason preprocess.json records


def unknown_column(key: str, name: str, columns: Sequence[str]) -> SpecError:
    """The error for ``key`` naming ``name``, which is not one of ``columns``."""
    columns = [str(c) for c in columns]
    hint = nearest_name(name, columns)
    did = f" (did you mean {hint!r}?)" if hint else ""
    shown = ", ".join(columns[:20]) + (
        f", ... ({len(columns)} in all)" if len(columns) > 20 else ""
    )
    return SpecError(key, f"column {name!r} not in the data{did}; columns: {shown}")


def check_columns(spec, columns: Sequence[str]) -> None:
    """Every column ``spec`` (a DataSpec) names by name is one of ``columns``.

    Raises:
        SpecError: naming the key (data.target, data.key, data.drop) and the nearest column.
    """
    have = set(map(str, columns))
    for key, names in (
        ("data.target", [spec.target] if spec.target else []),
        ("data.key", [spec.key] if spec.key else []),
        ("data.drop", spec.drop),
    ):
        for name in names:
            if name not in have:
                raise unknown_column(key, name, list(columns))
