"""The fitted preprocessor: impute, scale, encode, select. JSON in and out, no pickle.

The same ``transform`` runs at training time and in the serving replica, so what the model sees
online is what it saw offline.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automodel.errors import ArtifactError, DataError

ONEHOT_MAX = 20  # categories up to this are one-hot encoded, above it ordinal codes
ORDINAL_MAX = 200  # above this a text column looks like free text or an identifier


DATE_PARTS = ("year", "month", "dayofyear", "dayofweek")  # "hour" too when the column has times


@dataclass
class Column:
    """One raw input column and how it encodes.

    A ``date`` column encodes as its calendar ``parts`` (year, month, day of year, day of week,
    hour where the data has times), each scaled by its ``means`` and ``stds``; a missing date
    takes ``fill``, the median date (ISO text).
    """

    name: str
    kind: str  # "numeric" | "categorical" | "date"
    fill: Any
    mean: float = 0.0
    std: float = 1.0
    categories: list[str] = field(default_factory=list)
    encoding: str = "onehot"  # categorical: "onehot" | "ordinal"
    parts: list[str] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)

    @property
    def width(self) -> int:
        if self.kind == "date":
            return len(self.parts)
        return (
            len(self.categories) if self.kind == "categorical" and self.encoding == "onehot" else 1
        )


@dataclass
class Preprocessor:
    """Turns raw rows into the float32 matrix a model takes.

    ``columns`` are the raw input columns in order; ``selected`` (when set) are indices into the
    encoded features that the model keeps.
    """

    columns: list[Column]
    dropped: dict[str, str]
    target: str
    task: str
    classes: list | None = None
    selected: list[int] | None = None
    image_shape: list[int] | None = None

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        target: str,
        task: str,
        classes: list | None = None,
        image_shape: tuple[int, ...] | None = None,
    ) -> Preprocessor:
        columns, dropped = [], {}
        for name in frame.columns:
            if name == target:
                continue
            s = frame[name]
            if s.isna().all():
                dropped[str(name)] = "all values missing"
            elif pd.api.types.is_datetime64_any_dtype(s):
                columns.append(_date_column(str(name), s))
            elif pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
                values = s.dropna().astype(str)
                cats = sorted(values.unique().tolist())
                if len(cats) > ONEHOT_MAX and _looks_like_dates(values):
                    columns.append(_date_column(str(name), s))
                    continue
                if len(cats) > ORDINAL_MAX or (
                    len(cats) > ONEHOT_MAX and len(cats) > 0.5 * len(values)
                ):
                    dropped[str(name)] = f"free text or identifier ({len(cats)} distinct values)"
                    continue
                fill = values.mode().iloc[0]
                enc = "onehot" if len(cats) <= ONEHOT_MAX else "ordinal"
                columns.append(
                    Column(str(name), "categorical", fill, categories=cats, encoding=enc)
                )
            else:
                vals = s.astype(float)
                fill = float(vals.median())
                filled = vals.fillna(fill)
                std = float(filled.std(ddof=0)) or 1.0
                columns.append(Column(str(name), "numeric", fill, float(filled.mean()), std))
        for name, why in dropped.items():
            warnings.warn(f"column {name!r} dropped: {why}", stacklevel=2)
        if not columns:
            raise DataError(
                "no usable feature columns after preprocessing: "
                + "; ".join(f"{k}: {v}" for k, v in dropped.items())
            )
        shape = list(image_shape) if image_shape and not dropped else None
        return cls(columns, dropped, str(target), task, classes, None, shape)

    # ---- shape -----------------------------------------------------------------------------
    @property
    def input_columns(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        names = []
        for c in self.columns:
            if c.kind == "date":
                names += [f"{c.name}.{p}" for p in c.parts]
            elif c.kind == "categorical" and c.encoding == "onehot":
                names += [f"{c.name}={v}" for v in c.categories]
            else:
                names.append(c.name)
        return names

    @property
    def n_features(self) -> int:
        return len(self.selected) if self.selected is not None else len(self.feature_names)

    def with_selection(self, selected: list[int] | None) -> Preprocessor:
        d = asdict(self)
        d["columns"] = [Column(**c) for c in d["columns"]]
        d["selected"] = None if selected is None else [int(i) for i in selected]
        if selected is not None:
            d["image_shape"] = None
        return Preprocessor(**d)

    # ---- transform -------------------------------------------------------------------------
    def transform(self, rows: pd.DataFrame | list | np.ndarray) -> np.ndarray:
        """Encode raw rows: a DataFrame, a list of lists in ``input_columns`` order, or of dicts.

        Raises:
            DataError: naming the row/column when an input cannot be encoded.
        """
        frame = self.to_frame(rows)
        parts = []
        for c in self.columns:
            s = frame[c.name]
            if c.kind == "numeric":
                try:
                    v = pd.to_numeric(s, errors="raise").astype(float)
                except (ValueError, TypeError):
                    bad = next(x for x in s if not _is_number_like(x))
                    raise DataError(f"column {c.name!r}: expected a number, got {bad!r}") from None
                arr = v.to_numpy()
                if np.isinf(arr).any():
                    raise DataError(f"column {c.name!r}: non-finite value (inf)")
                arr = np.where(np.isnan(arr), c.fill, arr)
                parts.append(((arr - c.mean) / c.std)[:, None])
            elif c.kind == "date":
                dates = parse_dates(s, column=c.name).fillna(pd.Timestamp(c.fill))
                values = date_parts(dates, c.parts)
                for p, mean, std in zip(c.parts, c.means, c.stds):
                    parts.append(((values[p] - mean) / std)[:, None])
            else:
                vals = s.where(s.notna(), c.fill).astype(str).to_numpy()
                index = {v: i for i, v in enumerate(c.categories)}
                codes = np.array([index.get(v, -1) for v in vals])
                if c.encoding == "onehot":
                    # Unknown categories encode as all zeros, like sklearn's handle_unknown="ignore".
                    onehot = np.zeros((len(vals), len(c.categories)))
                    known = codes >= 0
                    onehot[np.flatnonzero(known), codes[known]] = 1.0
                    parts.append(onehot)
                else:
                    parts.append((codes / max(1, len(c.categories) - 1))[:, None])
        X = np.concatenate(parts, axis=1).astype(np.float32)
        if self.selected is not None:
            X = X[:, self.selected]
        return X

    def to_frame(self, rows: pd.DataFrame | list | np.ndarray) -> pd.DataFrame:
        cols = self.input_columns
        if isinstance(rows, pd.DataFrame):
            missing = [c for c in cols if c not in rows.columns]
            if missing:
                raise DataError(f"missing column(s): {', '.join(missing)}")
            return rows
        if isinstance(rows, np.ndarray):
            rows = rows.tolist()
        if not isinstance(rows, list) or not rows:
            raise DataError("expected a non-empty list of rows")
        if all(isinstance(r, dict) for r in rows):
            for i, r in enumerate(rows):
                missing = [c for c in cols if c not in r]
                if missing:
                    raise DataError(f"row {i}: missing column(s): {', '.join(missing[:10])}")
                extra = [
                    k for k in r if k not in cols and k not in self.dropped and k != self.target
                ]
                if extra:
                    raise DataError(
                        f"row {i}: unknown column(s): {', '.join(map(str, extra[:10]))}"
                    )
            return pd.DataFrame([[r[c] for c in cols] for r in rows], columns=cols)
        for i, r in enumerate(rows):
            if not isinstance(r, (list, tuple)):
                raise DataError(
                    f"row {i}: expected a list of {len(cols)} values or a {{column: value}} object, got {type(r).__name__}"
                )
            if len(r) != len(cols):
                raise DataError(f"row {i}: expected {len(cols)} values, got {len(r)}")
        return pd.DataFrame(list(rows), columns=cols)

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": "automodel.preprocess/1", **asdict(self)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=_json_default))

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        d = dict(d)
        if d.pop("format", None) != "automodel.preprocess/1":
            raise ArtifactError("preprocess.json: unknown format (expected automodel.preprocess/1)")
        d["columns"] = [Column(**c) for c in d["columns"]]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ArtifactError(f"{path}: missing") from None
        except (json.JSONDecodeError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: corrupt preprocessor ({exc})") from None


def parse_dates(s: pd.Series, *, column: str | None = None) -> pd.Series:
    """``s`` as naive datetimes (time zones converted to UTC); missing stays NaT.

    Raises:
        DataError: with ``column`` set, when a present value is not a date.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = pd.to_datetime(s)  # numpy datetimes, also from Arrow-backed columns
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = s.where(s.notna(), None).astype(object)
            parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
        if column is not None:
            bad = parsed.isna() & s.notna()
            if bad.any():
                raise DataError(f"column {column!r}: expected a date, got {s[bad].iloc[0]!r}")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def date_parts(
    s: pd.Series, parts: list[str] | tuple[str, ...], *, column: str | None = None
) -> dict[str, np.ndarray]:
    """The calendar ``parts`` of a date column as float arrays (NaN where the date is missing)."""
    d = parse_dates(s, column=column).dt
    out = {}
    for p in parts:
        v = getattr(d, {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(p, p))
        out[p] = np.asarray(v, dtype=float)
    return out


def has_time(s: pd.Series) -> bool:
    """Whether any date in ``s`` has a time of day (then the hour is a feature too)."""
    d = parse_dates(s).dropna()
    return bool(len(d)) and bool((d != d.dt.normalize()).any())


def _date_column(name: str, s: pd.Series) -> Column:
    dates = parse_dates(s)
    fill = date_fill(dates.dropna())
    parts = [*DATE_PARTS, "hour"] if has_time(dates) else list(DATE_PARTS)
    values = date_parts(dates.fillna(pd.Timestamp(fill)), parts)
    means = [float(values[p].mean()) for p in parts]
    stds = [float(values[p].std(ddof=0)) or 1.0 for p in parts]
    return Column(name, "date", fill, parts=parts, means=means, stds=stds)


def date_fill(dates: pd.Series) -> str:
    """The imputation value of a date column: its median date, as ISO text (JSON, and a valid
    input row for serving's self-test)."""
    values = dates.astype("datetime64[ns]").astype("int64")
    return pd.Timestamp(int(np.median(values))).isoformat()


def _is_number_like(x: Any) -> bool:
    if x is None:
        return True
    if isinstance(x, bool):
        return False
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.head(50)
    if sample.empty or sample.str.len().mean() < 6:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() > 0.9


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
