"""load_spec(): YAML to a validated Spec, every failure one line naming the key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from automodel.errors import SpecError
from automodel.spec._models import Spec
from automodel.spec._names import nearest_name


def _path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and "[" in p and "]" in p))


def _message(err: dict) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}, got {got!r}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {got!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "string_pattern_mismatch":
        return f"must be letters, digits, '_', '.' or '-' (starting with a letter or digit), got {got!r}"
    expected = err["msg"].replace("Input should be ", "expected ")
    return f"{expected}, got {got!r}"


def _valid_keys(loc: tuple) -> str:
    """The keys allowed where an unknown key was found, for the hint."""
    model: Any = Spec
    for part in loc[:-1]:
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return ""
        ann = field.annotation
        model = next(
            (a for a in getattr(ann, "__args__", (ann,)) if hasattr(a, "model_fields")), ann
        )
    if not hasattr(model, "model_fields"):
        return ""
    valid = list(model.model_fields)
    hint = nearest_name(str(loc[-1]), valid) if loc else None
    did = f"; did you mean `{hint}`?" if hint else ""
    return f"{did} (valid keys: {', '.join(valid)})"


def spec_from_dict(raw: Any, source: str = "spec") -> Spec:
    """Validate a plain dict (already parsed YAML/JSON) into a Spec."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(
            "",
            f"{source} must be a mapping of sections (name, data, search, ...), got {type(raw).__name__}",
        )
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        # Unions report one error per branch; the first carries the real problem.
        loc = tuple(
            p
            for p in first["loc"]
            if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
        )
        msg = _message(first)
        if first["type"] == "extra_forbidden":
            msg += _valid_keys(loc)
        key = _path(loc)
        named = msg.split(": ", 1)[0] if ": " in msg else ""
        if msg.startswith(key + ": "):  # cross-field checks already name their key
            msg = msg[len(key) + 2 :]
        elif key and named.startswith(key + ".") and " " not in named:  # a section's own check
            key, msg = named, msg[len(named) + 2 :]
        elif ": " in msg and not key and msg.split(": ", 1)[0].count(".") >= 1:
            key, msg = msg.split(": ", 1)
        raise SpecError(key, msg) from None


def _check_files(spec: Spec, base: Path) -> Spec:
    """Missing local data files are spec errors, reported before any work starts."""
    src = spec.data.source
    if not isinstance(src, str) or src.startswith(("builtin:", "synthetic:")) or "://" in src:
        return spec  # a list of files, a builtin or a URI: the data stage resolves and checks them
    if any(ch in src for ch in "*?["):  # a glob: matched when the data loads
        return spec
    path = Path(src).expanduser()
    tried = [path]
    if not path.is_absolute():
        tried = list(dict.fromkeys([(base / path).resolve(), (Path.cwd() / path).resolve()]))
        path = next((p for p in tried if p.exists()), tried[-1])
    if not path.exists():
        where = " or ".join(str(p) for p in tried)
        raise SpecError("data.source", f"file not found: {src} (looked for {where})")
    if path.is_dir():  # a directory of Parquet/CSV files
        spec.data.source = str(path)
        return spec
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise SpecError("data.source", f"expected a .csv or .parquet file, got {src}")
    spec.data.source = str(path)
    return spec


def load_spec(path: str | Path | None = None) -> Spec:
    """Read, validate and resolve a spec file.

    Args:
        path: a YAML (or JSON) file; ``None`` gives the builtin digits quickstart.

    Raises:
        SpecError: with the key path and what was expected, for any problem.
    """
    if path is None:
        return Spec()
    path = Path(path)
    if not path.exists():
        raise SpecError("", f"spec file not found: {path}")
    if path.is_dir():
        raise SpecError("", f"expected a spec file, got a directory: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("", f"invalid YAML in {path}{where}: {problem}") from None
    except UnicodeDecodeError:
        raise SpecError("", f"{path} is not a text file") from None
    spec = spec_from_dict(raw, source=str(path))
    return _check_files(spec, path.parent)


def dump_spec(spec: Spec) -> str:
    """The resolved spec as YAML (every default written out)."""
    return yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False)


def spec_json_schema() -> dict:
    """JSON schema of the spec, for editors (``automodel validate --schema``)."""
    return Spec.model_json_schema()
