"""Tiny inline-SVG charts: lines, scatters, horizontal bars and a heatmap.

Hand-written rather than matplotlib so the report needs no plotting dependency and every chart is
text that a browser draws offline (and a test can read). Each chart is one ``<svg>`` element with
``data-plot=NAME`` and ``<title>`` tooltips on its marks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
MUTED = "#bbbbbb"
INK = "#333333"
GRID = "#e6e6e6"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@dataclass
class Series:
    """One named set of points; ``line`` joins them, ``marker`` draws them."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = PALETTE[0]
    line: bool = True
    marker: str | None = None  # "circle", "cross", "square" or None
    dashed: bool = False
    width: float = 1.6
    size: float = 3.5
    tips: Sequence[str] | None = None  # a tooltip a point
    end_marker: str | None = None  # drawn on the last point only (e.g. "cross" for an early stop)
    legend: bool = True
    labels: Sequence[str] | None = None  # text beside each point


@dataclass
class Mark:
    """A rule at ``at`` (a worker restart, an allowed metric drop), labelled: vertical unless ``horizontal``."""

    at: float
    label: str
    color: str = "#e15759"
    horizontal: bool = False


@dataclass
class _Scale:
    lo: float
    hi: float
    a: float  # pixel of lo
    b: float  # pixel of hi
    log: bool = False

    def __call__(self, v: float) -> float:
        lo, hi, v = (
            (math.log10(self.lo), math.log10(self.hi), math.log10(v))
            if self.log
            else (self.lo, self.hi, v)
        )
        return self.a + (v - lo) / ((hi - lo) or 1.0) * (self.b - self.a)

    def ticks(self, n: int = 5) -> list[float]:
        if self.log:
            lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            step = max(1, (hi - lo) // n)
            return [
                10.0**e for e in range(lo, hi + 1, step) if self.lo <= 10.0**e <= self.hi * 1.0001
            ]
        return nice_ticks(self.lo, self.hi, n)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


def fmt(v: float) -> str:
    """A short number: 0.9676, 12, 1.2e-04, 3.4k."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:.0f}k"
    if a >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    if a < 0.001:
        return f"{v:.0e}"
    return f"{v:.4g}"


def _extent(values: list[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log:
        return (lo / 1.3, hi * 1.3) if lo != hi else (lo / 3, hi * 3)
    if lo == hi:
        return lo - (abs(lo) or 1) * 0.1, hi + (abs(hi) or 1) * 0.1
    span = hi - lo
    return lo - span * pad, hi + span * pad


def _marker(kind: str, x: float, y: float, size: float, fill: str, tip: str | None) -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    if kind == "cross":
        s = size * 1.2
        return (
            f'<g stroke="{fill}" stroke-width="2">{title}<line x1="{x - s:.1f}" y1="{y - s:.1f}" x2="{x + s:.1f}" '
            f'y2="{y + s:.1f}"/><line x1="{x - s:.1f}" y1="{y + s:.1f}" x2="{x + s:.1f}" y2="{y - s:.1f}"/></g>'
        )
    if kind == "square":
        s = size * 1.1
        return (
            f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" fill="{fill}" '
            f'stroke="white" stroke-width="0.8">{title}</rect>'
        )
    if kind == "star":
        pts = " ".join(
            f"{x + r * math.sin(i * math.pi / 5):.1f},{y - r * math.cos(i * math.pi / 5):.1f}"
            for i, r in zip(range(10), [size * 2.2, size * 0.9] * 5)
        )
        return f'<polygon points="{pts}" fill="{fill}" stroke="{INK}" stroke-width="0.8">{title}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{fill}" fill-opacity="0.85">{title}</circle>'


@dataclass
class _Frame:
    """Shared layout: the SVG element, plot area, axes and legend."""

    name: str
    title: str
    width: int = 640
    height: int = 300
    margin: tuple[int, int, int, int] = (38, 24, 52, 70)  # top, right, bottom, left
    parts: list[str] = field(default_factory=list)
    # drawn at its own size (a confusion matrix, a square scatter); the others fill the page's
    # width, drawn about as wide as they show so their labels read at their font size
    natural: bool = False

    @property
    def box(self) -> tuple[float, float, float, float]:
        t, r, b, lft = self.margin
        return lft, t, self.width - r, self.height - b

    def svg(self, legend: list[tuple[str, str, str]] | None = None) -> str:
        """The finished element; ``legend`` items (label, colour, marker) wrap along the top."""
        items, x, y = [], self.box[0], 4
        for label, col, kind in legend or []:
            step = 26 + 7.4 * len(label)
            if x + step > self.width and x > self.box[0]:
                x, y = self.box[0], y + 17
            items.append(
                _marker(kind, x + 5, y + 7, 3.2, col, None)
                + f'<text x="{x + 13}" y="{y + 11}" font-size="13" fill="{INK}">{escape(label)}</text>'
            )
            x += step
        label = escape(self.title or self.name)
        size = ' data-size="natural"' if self.natural else ""
        return (
            f'<svg class="plot" data-plot="{escape(self.name)}"{size} role="img" '
            f'aria-label="{label}" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" font-family="sans-serif"><title>{label}</title>'
            f"{''.join(items)}{''.join(self.parts)}</svg>"
        )

    def axes(
        self, sx: _Scale, sy: _Scale, x_label: str, y_label: str, x_ticks: list | None = None
    ) -> None:
        x0, y0, x1, y1 = self.box
        p = self.parts
        for t in sy.ticks():
            y = sy(t)
            p.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{GRID}"/>'
                f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="13" text-anchor="end" fill="{INK}">{fmt(t)}</text>'
            )
        for t, label in x_ticks or [(t, fmt(t)) for t in sx.ticks()]:
            x = sx(t)
            p.append(
                f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 4}" stroke="{INK}"/>'
                f'<text x="{x:.1f}" y="{y1 + 16}" font-size="13" text-anchor="middle" fill="{INK}">{escape(label)}</text>'
            )
        p.append(
            f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="{INK}" stroke-width="0.8"/>'
        )
        p.append(
            f'<text x="{(x0 + x1) / 2}" y="{self.height - 8}" font-size="14" text-anchor="middle" fill="{INK}">{escape(x_label)}</text>'
        )
        p.append(
            f'<text transform="translate(14,{(y0 + y1) / 2}) rotate(-90)" font-size="14" text-anchor="middle" '
            f'fill="{INK}">{escape(y_label)}</text>'
        )


def xy_chart(
    name: str,
    series: list[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    marks: Sequence[Mark] = (),
    width: int = 940,
    height: int = 320,
    x_categories: Sequence[str] | None = None,
    diagonal: bool = False,
    natural: bool = False,
) -> str:
    """Lines and/or scatters on shared axes; ``x_categories`` puts strings at x = 0, 1, ..."""
    f = _Frame(name, title, width, height, natural=natural)
    x0, y0, x1, y1 = f.box
    xs = [x for s in series for x in s.xs] + [m.at for m in marks if not m.horizontal]
    ys = [y for s in series for y in s.ys] + [m.at for m in marks if m.horizontal]
    if x_categories is not None:
        sx = _Scale(-0.5, len(x_categories) - 0.5, x0, x1)
        x_ticks = list(enumerate(x_categories))
    else:
        sx, x_ticks = _Scale(*_extent(xs, log_x), x0, x1, log=log_x), None
    lo, hi = _extent(ys + (xs if diagonal else []), False)
    if diagonal:
        sx = _Scale(lo, hi, x0, x1)
    sy = _Scale(lo, hi, y1, y0)
    f.axes(sx, sy, x_label, y_label, x_ticks)
    if diagonal:
        f.parts.append(
            f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    for m in marks:
        if m.horizontal:
            y = sy(m.at)
            f.parts.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{m.color}" '
                f'stroke-dasharray="5 3"><title>{escape(m.label)}</title></line>'
                f'<text x="{x1 - 4}" y="{y - 4:.1f}" font-size="12" text-anchor="end" fill="{m.color}">'
                f"{escape(m.label)}</text>"
            )
            continue
        x = sx(m.at)
        f.parts.append(
            f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="{m.color}" stroke-dasharray="5 3">'
            f"<title>{escape(m.label)}</title></line>"
            f'<text x="{x + 3:.1f}" y="{y0 + 12}" font-size="12" fill="{m.color}">{escape(m.label)}</text>'
        )
    # Points that share a spot share one label.
    labels: dict[tuple[int, int], tuple[float, float, float, list[str]]] = {}
    for s in series:
        pts = [
            (sx(x), sy(y))
            for x, y in zip(s.xs, s.ys)
            if y is not None and math.isfinite(y) and (x > 0 or not log_x)
        ]
        if s.line and len(pts) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            tip = f"<title>{escape(s.name)}</title>"
            f.parts.append(
                f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="{s.width}" '
                f'stroke-opacity="0.9"{dash}>{tip}</polyline>'
            )
        tips = list(s.tips) if s.tips is not None else [s.name] * len(pts)
        if s.marker:
            f.parts += [
                _marker(s.marker, x, y, s.size, s.color, tip) for (x, y), tip in zip(pts, tips)
            ]
        if s.end_marker and pts:
            f.parts.append(
                _marker(s.end_marker, *pts[-1], s.size, s.color, tips[-1] if tips else s.name)
            )
        for (x, y), text in zip(pts, s.labels or []):
            labels.setdefault((round(x / 6), round(y / 6)), (x, y, s.size, []))[3].append(text)
    for x, y, size, texts in labels.values():
        text = escape(", ".join(texts))
        if x > x1 - 6 * len(text) - 10:  # near the right edge: write it on the left
            f.parts.append(
                f'<text x="{x - size - 4:.1f}" y="{y + 4:.1f}" font-size="12.5" '
                f'text-anchor="end" fill="{INK}">{text}</text>'
            )
        else:
            f.parts.append(
                f'<text x="{x + size + 4:.1f}" y="{y + 4:.1f}" font-size="12.5" '
                f'fill="{INK}">{text}</text>'
            )
    seen, legend = set(), []
    for s in series:
        if s.legend and s.name not in seen:
            seen.add(s.name)
            legend.append((s.name, s.color, s.marker or "circle"))
    return f.svg(legend)


def hbar_chart(
    name: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    colors: Sequence[str],
    title: str = "",
    x_label: str = "",
    width: int = 940,
    bar: int = 16,
    notes: Sequence[str] | None = None,
    cut_after: int | None = None,
    cut_label: str = "",
) -> str:
    """Horizontal bars, one a label, top to bottom in the given order; a dashed rule after bar ``cut_after``."""
    left = min(260, 18 + 7.8 * max((len(label) for label in labels), default=4))
    height = 40 + bar * len(labels) + 40
    f = _Frame(name, title, width, height, margin=(24, 60, 40, int(left)))
    x0, y0, x1, y1 = f.box
    sx = _Scale(0.0, max([v for v in values if v is not None] + [1e-12]) * 1.05, x0, x1)
    f.axes(sx, _Scale(0, 1, y1, y0), x_label, "", None)
    f.parts = [p for p in f.parts if "rotate(-90)" not in p and 'text-anchor="end"' not in p]
    for i, (label, v, col) in enumerate(zip(labels, values, colors)):
        y = y0 + 4 + i * bar
        note = notes[i] if notes else ""
        tip = escape(f"{label}: {fmt(v)}{' ' + note if note else ''}")
        f.parts.append(
            f'<rect x="{x0}" y="{y:.1f}" width="{max(0.5, sx(v) - x0):.1f}" height="{bar - 3}" fill="{col}">'
            f"<title>{tip}</title></rect>"
            f'<text x="{x0 - 5}" y="{y + bar - 5:.1f}" font-size="12.5" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
            f'<text x="{sx(v) + 4:.1f}" y="{y + bar - 5:.1f}" font-size="12" fill="#666">{fmt(v)}{escape(" " + note) if note else ""}</text>'
        )
    if cut_after is not None and 0 < cut_after < len(labels):
        y = y0 + 4 + cut_after * bar - 1.5
        f.parts.append(
            f'<line x1="{x0 - 60}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e15759" stroke-width="1.5" '
            f'stroke-dasharray="6 3"/><text x="{x1 - 4}" y="{y - 3:.1f}" font-size="12.5" text-anchor="end" '
            f'fill="#e15759">{escape(cut_label)}</text>'
        )
    return f.svg()


def heatmap(
    name: str,
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "",
    x_label: str = "predicted",
    y_label: str = "actual",
    cell: int = 34,
) -> str:
    """A square matrix of counts (a confusion matrix): darker is more, the diagonal outlined."""
    n = len(labels)
    cell = max(14, min(cell, 560 // max(1, n)))
    left, top = 70, 30
    width, height = left + cell * n + 20, top + cell * n + 50
    peak = max((v for row in matrix for v in row), default=1) or 1
    parts = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, v in enumerate(row):
            shade = v / peak
            fill = f"rgba(78,121,167,{0.06 + 0.94 * shade:.3f})"
            x, y = left + j * cell, top + i * cell
            stroke = f' stroke="{INK}" stroke-width="1.2"' if i == j else ' stroke="white"'
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{stroke}>'
                f"<title>actual {escape(labels[i])}, predicted {escape(labels[j])}: {fmt(v)} "
                f"({100 * v / total:.1f}% of row)</title></rect>"
            )
            if v and cell >= 20:
                ink = "white" if shade > 0.55 else INK
                parts.append(
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" font-size="{min(13, cell // 2.6)}" '
                    f'text-anchor="middle" fill="{ink}">{fmt(v)}</text>'
                )
    for k, label in enumerate(labels):
        short = label if len(label) <= 8 else label[:7] + "…"
        parts.append(
            f'<text x="{left + k * cell + cell / 2}" y="{top + n * cell + 14}" font-size="13" '
            f'text-anchor="middle" fill="{INK}">{escape(short)}</text>'
            f'<text x="{left - 6}" y="{top + k * cell + cell / 2 + 4}" font-size="13" text-anchor="end" '
            f'fill="{INK}">{escape(short)}</text>'
        )
    parts.append(
        f'<text x="{left + n * cell / 2}" y="{height - 8}" font-size="14" text-anchor="middle" '
        f'fill="{INK}">{escape(x_label)}</text>'
        f'<text transform="translate(14,{top + n * cell / 2}) rotate(-90)" font-size="14" '
        f'text-anchor="middle" fill="{INK}">{escape(y_label)}</text>'
    )
    f = _Frame(name, title, width, height, natural=True)
    f.parts = parts
    return f.svg()
