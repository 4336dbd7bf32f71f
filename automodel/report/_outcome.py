"""Report sections about the final model: training history, test metrics, compression, lineage."""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass
from html import escape

from automodel.contracts import Compression, HistoryRow, TrainInfo
from automodel.report import _svg as svg
from automodel.report._collect import RunData
from automodel.report._sections import note, num, params_text, size, table


def _epoch_chart(
    chart_id: str,
    points: list[HistoryRow],
    keys: list[str],
    *,
    title: str,
    y_label: str,
    marks: list[svg.Mark],
    first_color: int,
) -> str:
    """One line per history key (``train_loss``, or a validation metric) over the epochs."""

    def value(row: HistoryRow, key: str) -> float | None:
        return row.train_loss if key == "train_loss" else row.val().get(key[4:])

    series = []
    for i, key in enumerate(keys):
        rows = [r for r in points if value(r, key) is not None]
        series.append(
            svg.Series(
                key.replace("_", " "),
                [float(r.epoch) for r in rows],
                [value(r, key) for r in rows],
                color=svg.color(i + first_color),
                marker="circle",
                size=2.2,
            )
        )
    return svg.xy_chart(
        chart_id,
        series,
        title=title,
        x_label="epoch",
        y_label=y_label,
        marks=marks,
        width=460,
        height=260,
    )


def training_section(data: RunData) -> str | None:
    card = data.card
    if card is None:
        return note("No final model: this run did not train (artifact/card.json is absent).")
    train = card.train or TrainInfo()
    facts = table(
        ["family", "params", "workers", "GPU", "epochs", "restarts", "rows seen", "wall time"],
        [
            [
                escape(str(card.family)),
                f'<span class="params">{params_text(card.params)}</span>',
                num(train.workers),
                "yes" if train.use_gpu else "no",
                num(train.epochs),
                num(train.restarts),
                # the rows the final fit learned from, of the rows it had
                f"{num(train.rows_seen)} of {num(train.rows_available)}",
                f"{num(train.wall_s, 3)} s",
            ]
        ],
    )
    refit = getattr(train, "refit", None)  # written by the trainers, not a field of the contract
    fitted = {True: "retrained on train + validation", False: "trained on the training split"}
    fitted = f"<p>The winner {fitted.get(refit, 'was trained')}."
    points = [r for r in card.history if r.train_loss is not None or r.val()]
    if len(points) < 2:
        return (
            facts
            + f"{fitted}</p>"
            + note("This model trains in one fit: there is no per-epoch history to draw.")
        )
    # The one restart marker: the first epoch a replacement worker group ran.
    marks = [svg.Mark(float(e), "worker restart") for e in card.restart_epochs]
    charts = []
    if any(r.train_loss is not None for r in points):
        charts.append(
            _epoch_chart(
                "train-loss",
                points,
                ["train_loss"],
                title="loss per epoch",
                y_label="loss",
                marks=marks,
                first_color=0,
            )
        )
    metric_keys = sorted({f"val_{k}" for r in points for k in r.val()})
    if metric_keys:
        charts.append(
            _epoch_chart(
                "train-metric",
                points,
                metric_keys,
                title="validation metric per epoch",
                y_label="validation",
                marks=marks,
                first_color=2,
            )
        )
    restarts = ""
    if marks:
        at = ", ".join(str(e) for e in card.restart_epochs)
        restarts = (
            f' <span class="restart">Ray Train restarted the workers {len(marks)} time(s); '
            f"the replacement group resumed from the last checkpoint and ran epoch {at} first "
            "(dashed red lines).</span>"
        )
    return f'{facts}{fitted}{restarts}</p><div class="grid">{"".join(charts)}</div>'


def test_section(data: RunData) -> str | None:
    card = data.card
    if card is None or not card.metrics.test:
        return None
    test, val = card.metrics.test, card.metrics.val
    ev = data.evaluation
    names = list(test)
    rows = [
        ["test", *(num(test[n]) for n in names)],
        ["validation", *(num(val.get(n)) for n in names)],
    ]
    if ev is not None and ev.baseline:
        what = "majority class" if card.task == "classification" else "mean of the training target"
        rows.append([f"baseline ({what}), test", *(num(ev.baseline.get(n)) for n in names)])
    out = [table(["split", *map(escape, names)], rows, cls="metrics")]
    if ev is not None and ev.confusion_matrix:
        labels = ev.labels or [str(i) for i in range(len(ev.confusion_matrix))]
        out.append(
            f"<p>Confusion matrix on the {num(ev.n)} test rows (rows: actual class; diagonal: correct).</p>"
        )
        out.append(
            svg.heatmap(
                "test-metrics", ev.confusion_matrix, labels, title="confusion matrix (test)"
            )
        )
    elif ev is not None and ev.y_true:
        pts = svg.Series(
            "test rows",
            ev.y_true,
            ev.y_pred,
            line=False,
            marker="circle",
            size=2.4,
            legend=False,
            tips=[f"actual {num(a)}, predicted {num(p)}" for a, p in zip(ev.y_true, ev.y_pred)],
        )
        sampled = f" (a sample of {len(ev.y_true)})" if ev.n > len(ev.y_true) else ""
        out.append(
            f"<p>Predicted against actual on the {num(ev.n)} test rows{sampled}; "
            "the dashed diagonal is a perfect prediction.</p>"
        )
        out.append(
            svg.xy_chart(
                "test-metrics",
                [pts],
                title="predicted vs actual (test)",
                x_label="actual",
                y_label="predicted",
                diagonal=True,
                width=520,
                height=460,
                natural=True,
            )
        )
    else:
        out.append(
            note(
                "No test predictions were stored (evaluation.json is absent), so no confusion matrix."
            )
        )
    return "".join(out)


@dataclass
class _Entry:
    """One row of the compression table."""

    size_bytes: int | None = None
    metric: float | None = None
    latency_ms: float | None = None
    reason: str | None = None
    qualified: bool | None = None
    not_shipped: bool = False
    status: str = "qualified"


def _variants(comp: Compression) -> tuple[dict[str, _Entry], str]:
    """Every variant by name (the float baseline first) with its status, and the baseline's name.

    The compress stage lists the float model first in ``variants`` and every variant it did not
    ship in ``rejected`` (with the reason); a scikit-learn model's card has neither.
    """
    entries: dict[str, _Entry] = {}
    if comp.variants:
        baseline = comp.variants[0].variant
    else:
        baseline = "original"
        entries[baseline] = _Entry(
            comp.size_bytes_before, comp.metric_before, comp.latency_ms_before
        )
    for v in comp.variants:
        entries[v.variant] = _Entry(v.size_bytes, v.metric, v.latency_ms, v.reason, v.qualified)
    for r in comp.rejected:
        e = entries.setdefault(r.variant, _Entry())
        e.size_bytes, e.metric, e.reason, e.not_shipped = r.size_bytes, r.metric, r.reason, True
    chosen = comp.chosen
    if chosen not in entries:
        if comp.size_bytes_after == comp.size_bytes_before:  # the float model, under another name
            chosen = baseline
        else:
            entries[chosen] = _Entry(
                comp.size_bytes_after, comp.metric_after, comp.latency_ms_after
            )
    for name, e in entries.items():
        if name == chosen:
            e.status = "chosen"
        elif name == baseline:
            e.status = "baseline"
        elif e.qualified is False or (e.not_shipped and e.qualified is None):
            e.status = "rejected"
        else:
            e.status = "qualified"  # within the allowed drop, but a smaller one won
    return entries, baseline


STATUS_STYLE = {
    "chosen": ("star", svg.PALETTE[2]),
    "rejected": ("cross", svg.PALETTE[3]),
    "baseline": ("square", svg.INK),
    "qualified": ("circle", svg.PALETTE[0]),
}


def compression_section(data: RunData) -> str | None:
    comp = data.card.compression if data.card is not None else None
    if comp is None:
        return note("The model was not compressed (no <code>compress:</code> section in the spec).")
    metric = data.metric or comp.metric or "metric"
    entries, _ = _variants(comp)
    rows, series = [], []
    for name, e in entries.items():
        rows.append(
            [
                escape(name),
                size(e.size_bytes),
                num(e.metric),
                num(e.latency_ms, 3),
                f'<span class="st {e.status}">{e.status}</span>',
                escape(e.reason or ""),
            ]
        )
        if e.size_bytes is not None and e.metric is not None:
            kind, col = STATUS_STYLE[e.status]
            tip = f"{name} ({e.status}): {size(e.size_bytes)}, {metric} {num(e.metric)}"
            series.append(
                svg.Series(
                    e.status,
                    [e.size_bytes / 1024],
                    [e.metric],
                    color=col,
                    line=False,
                    marker=kind,
                    size=4.5,
                    labels=[name],
                    tips=[tip + (f" - {e.reason}" if e.reason else "")],
                )
            )
    seen = set()
    for s in series:
        s.legend = s.name not in seen
        seen.add(s.name)
    latency = ""
    if comp.latency_ms_before is not None:
        latency = (
            f", batch-1 latency {num(comp.latency_ms_before, 3)} → "
            f"{num(comp.latency_ms_after, 3)} ms"
        )
    why = f" {escape(comp.reason)}." if comp.reason else ""
    summary = (
        f"<p>Asked for pruning {num(comp.prune)} and quantization {escape(comp.quantize)}: "
        f"{size(comp.size_bytes_before)} → {size(comp.size_bytes_after)}, test {escape(metric)} "
        f"{num(comp.metric_before)} → {num(comp.metric_after)}{latency}. "
        f"Shipped: <b>{escape(comp.chosen)}</b>.{why}</p>"
    )
    marks = []
    if comp.max_metric_drop is not None and comp.metric_before is not None:
        drop = comp.max_metric_drop
        floor = comp.metric_before - drop if data.mode == "max" else comp.metric_before + drop
        marks.append(svg.Mark(floor, f"allowed drop ({num(drop)})", horizontal=True))
    chart = (
        svg.xy_chart(
            "compression",
            series,
            title=f"size vs test {metric}",
            x_label="model size (KB)",
            y_label=f"test {metric}",
            width=940,
            height=300,
            marks=marks,
        )
        if series
        else ""
    )
    return (
        summary
        + chart
        + table(
            ["variant", "size", f"test {escape(metric)}", "latency (ms)", "status", "reason"],
            rows,
            cls="compression",
        )
    )


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def lineage_section(data: RunData) -> str:
    card = data.card
    d = card.data if card is not None else None
    train = card.train if card is not None else None
    search = card.search if card is not None else None
    wall = data.result.wall_s if data.result is not None else None

    def seconds(v: float | None) -> str:
        return f"{num(v, 3)} s" if v is not None else "–"

    facts = [
        ("run directory", f"<code>{escape(str(data.run_dir))}</code>"),
        ("automodel", escape(str((card and card.automodel_version) or _version("automodel")))),
        ("Ray", escape(str((card and card.ray_version) or _version("ray")))),
        ("torch", escape(_version("torch"))),
        ("Python", escape(platform.python_version())),
        ("data source", escape(str((d and d.source) or "–"))),
        ("data sha256", f"<code>{escape(str((d and d.sha256) or '–'))}</code>"),
        ("model created", escape(str((card and card.created) or "–"))),
        ("run time", seconds(wall)),
        ("search time", seconds(search.wall_s if search is not None else None)),
        ("training time", seconds(train.wall_s if train is not None else None)),
    ]
    return table(None, [[k, v] for k, v in facts], cls="facts")
