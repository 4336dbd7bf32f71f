"""Report sections about the final model: training history, test metrics, compression, serving, lineage."""

from __future__ import annotations

import importlib.metadata
import platform
import re
from html import escape
from typing import Any

from automodel.report import _svg as svg
from automodel.report._collect import RunData
from automodel.report._sections import note, num, params_text, size, table


def _restart_epochs(history: list[dict[str, Any]]) -> list[float]:
    """Epochs where Ray Train restarted the workers.

    Accepts the shapes a history entry may carry: ``restart: true`` / ``event: "restart"`` on the
    first epoch after a restart, or a ``restarts`` / ``attempt`` counter that goes up.
    """
    marks, last = [], None
    for i, h in enumerate(history):
        epoch = h.get("epoch", i + 1)
        counter = h.get("restarts", h.get("attempt"))
        if (
            h.get("restart")
            or h.get("event") == "restart"
            or (last is not None and isinstance(counter, (int, float)) and counter > last)
        ):
            marks.append(float(epoch))
        if isinstance(counter, (int, float)):
            last = counter
    return marks


def training_section(data: RunData) -> str | None:
    card = data.card or {}
    history = [h for h in (card.get("history") or []) if isinstance(h, dict)]
    train = card.get("train") or {}
    if not card:
        return note("No final model: this run did not train (artifact/card.json is absent).")
    facts = table(
        ["family", "params", "workers", "GPU", "epochs", "restarts", "wall time"],
        [
            [
                escape(str(card.get("family"))),
                f'<span class="params">{params_text(card.get("params") or {})}</span>',
                num(train.get("workers")),
                "yes" if train.get("use_gpu") else "no",
                num(train.get("epochs")),
                num(train.get("restarts")),
                f"{num(train.get('wall_s'), 3)} s",
            ]
        ],
    )
    points = [h for h in history if any(k == "train_loss" or k.startswith("val_") for k in h)]
    if len(points) < 2:
        return facts + note("This model trains in one fit: there is no per-epoch history to draw.")
    epochs = [float(h.get("epoch", i + 1)) for i, h in enumerate(points)]
    marks = [svg.Mark(e, "worker restart") for e in _restart_epochs(history)]
    loss_keys = [k for k in ("train_loss", "val_loss") if any(h.get(k) is not None for h in points)]
    metric_keys = sorted(
        {
            k
            for h in points
            for k in h
            if k.startswith("val_") and k != "val_loss" and h[k] is not None
        }
    )
    charts = []
    if loss_keys:
        charts.append(
            svg.xy_chart(
                "train-loss",
                [
                    svg.Series(
                        k.replace("_", " "),
                        [e for e, h in zip(epochs, points) if h.get(k) is not None],
                        [h[k] for h in points if h.get(k) is not None],
                        color=svg.color(i),
                        marker="circle",
                        size=2.2,
                    )
                    for i, k in enumerate(loss_keys)
                ],
                title="loss per epoch",
                x_label="epoch",
                y_label="loss",
                marks=marks,
                width=470,
                height=260,
            )
        )
    if metric_keys:
        charts.append(
            svg.xy_chart(
                "train-metric",
                [
                    svg.Series(
                        k.replace("_", " "),
                        [e for e, h in zip(epochs, points) if h.get(k) is not None],
                        [h[k] for h in points if h.get(k) is not None],
                        color=svg.color(i + 2),
                        marker="circle",
                        size=2.2,
                    )
                    for i, k in enumerate(metric_keys)
                ],
                title="validation metric per epoch",
                x_label="epoch",
                y_label="validation",
                marks=marks,
                width=470,
                height=260,
            )
        )
    restarts = f" Dashed red lines mark {len(marks)} worker restart(s)." if marks else ""
    return f'{facts}<p>The winner retrained on the full training split.{restarts}</p><div class="grid">{"".join(charts)}</div>'


def test_section(data: RunData) -> str | None:
    card = data.card or {}
    metrics = card.get("metrics") or {}
    test, val = metrics.get("test") or {}, metrics.get("val") or {}
    if not test:
        return None
    names = list(test)
    out = [
        table(
            ["split", *map(escape, names)],
            [
                ["test", *(num(test[n]) for n in names)],
                ["validation", *(num(val.get(n)) for n in names)],
            ],
            cls="metrics",
        )
    ]
    ev = data.evaluation or {}
    if ev.get("confusion_matrix"):
        labels = [str(x) for x in ev.get("labels") or range(len(ev["confusion_matrix"]))]
        out.append(
            f"<p>Confusion matrix on the {num(ev.get('n'))} test rows (rows: actual class; diagonal: correct).</p>"
        )
        out.append(
            svg.heatmap(
                "test-metrics", ev["confusion_matrix"], labels, title="confusion matrix (test)"
            )
        )
    elif ev.get("y_true"):
        pts = svg.Series(
            "test rows",
            ev["y_true"],
            ev["y_pred"],
            line=False,
            marker="circle",
            size=2.4,
            legend=False,
            tips=[
                f"actual {num(a)}, predicted {num(p)}" for a, p in zip(ev["y_true"], ev["y_pred"])
            ],
        )
        sampled = (
            f" (a sample of {len(ev['y_true'])})" if ev.get("n", 0) > len(ev["y_true"]) else ""
        )
        out.append(
            f"<p>Predicted against actual on the {num(ev.get('n'))} test rows{sampled}; "
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
                width=460,
                height=400,
            )
        )
    else:
        out.append(
            note(
                "No test predictions were stored (evaluation.json is absent), so no confusion matrix."
            )
        )
    return "".join(out)


def _variants(comp: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """Every variant by name (the float baseline first) with its status, and the baseline's name.

    The compress stage lists the float model first in ``variants`` and every variant it did not
    ship in ``rejected`` (with the reason); an older or partial card may have neither.
    """
    listed = [
        v
        for v in comp.get("variants") or []
        if isinstance(v, dict) and v.get("variant") is not None
    ]
    entries: dict[str, dict[str, Any]] = {}
    if listed:
        baseline = str(listed[0]["variant"])
    else:
        baseline = "original"
        entries[baseline] = {
            "metric": comp.get("metric_before"),
            "size_bytes": comp.get("size_bytes_before"),
            "latency_ms": comp.get("latency_ms_before"),
        }
    for v in listed:
        entries[str(v["variant"])] = dict(v)
    for v in comp.get("rejected") or []:
        if isinstance(v, dict) and v.get("variant") is not None:
            entries.setdefault(str(v["variant"]), {}).update({**v, "not_shipped": True})
    chosen = str(comp.get("chosen")) if comp.get("chosen") is not None else None
    if chosen is not None and chosen not in entries:
        same = comp.get("size_bytes_after") == comp.get("size_bytes_before")
        if same:  # the float model was kept under another name
            chosen = baseline
        else:
            entries[chosen] = {
                "metric": comp.get("metric_after"),
                "size_bytes": comp.get("size_bytes_after"),
                "latency_ms": comp.get("latency_ms_after"),
            }
    for name, v in entries.items():
        if name == chosen:
            v["status"] = "chosen"
        elif name == baseline:
            v["status"] = "baseline"
        elif v.get("qualified") is False or (v.get("not_shipped") and v.get("qualified") is None):
            v["status"] = "rejected"
        else:
            v["status"] = "qualified"  # within the allowed drop, but a smaller one won
    return entries, baseline


STATUS_STYLE = {
    "chosen": ("star", svg.PALETTE[2]),
    "rejected": ("cross", svg.PALETTE[3]),
    "baseline": ("square", svg.INK),
    "qualified": ("circle", svg.PALETTE[0]),
}


def compression_section(data: RunData) -> str | None:
    comp = (data.card or {}).get("compression")
    if not comp:
        return note("The model was not compressed (no <code>compress:</code> section in the spec).")
    metric = data.metric or comp.get("metric") or "metric"
    entries, _ = _variants(comp)
    rows, series = [], []
    for name, v in entries.items():
        status = v["status"]
        rows.append(
            [
                escape(name),
                size(v.get("size_bytes")),
                num(v.get("metric")),
                num(v.get("latency_ms"), 3),
                f'<span class="st {status}">{status}</span>',
                escape(str(v.get("reason") or "")),
            ]
        )
        if isinstance(v.get("size_bytes"), (int, float)) and isinstance(
            v.get("metric"), (int, float)
        ):
            kind, col = STATUS_STYLE[status]
            tip = f"{name} ({status}): {size(v['size_bytes'])}, {metric} {num(v['metric'])}"
            series.append(
                svg.Series(
                    status,
                    [v["size_bytes"] / 1024],
                    [v["metric"]],
                    color=col,
                    line=False,
                    marker=kind,
                    size=4.5,
                    labels=[name],
                    tips=[tip + (f" - {v['reason']}" if v.get("reason") else "")],
                )
            )
    seen = set()
    for s in series:
        s.legend = s.name not in seen
        seen.add(s.name)
    latency = ""
    if comp.get("latency_ms_before") is not None:
        latency = (
            f", batch-1 latency {num(comp.get('latency_ms_before'), 3)} → "
            f"{num(comp.get('latency_ms_after'), 3)} ms"
        )
    why = f" {escape(str(comp['reason']))}." if comp.get("reason") else ""
    summary = (
        f"<p>Asked for pruning {num(comp.get('prune'))} and quantization {escape(str(comp.get('quantize')))}: "
        f"{size(comp.get('size_bytes_before'))} → {size(comp.get('size_bytes_after'))}, test {escape(metric)} "
        f"{num(comp.get('metric_before'))} → {num(comp.get('metric_after'))}{latency}. "
        f"Shipped: <b>{escape(str(comp.get('chosen')))}</b>.{why}</p>"
    )
    marks = []
    drop = comp.get("max_metric_drop", (data.spec.get("compress") or {}).get("max_metric_drop"))
    if isinstance(drop, (int, float)) and isinstance(comp.get("metric_before"), (int, float)):
        floor = comp["metric_before"] - drop if data.mode == "max" else comp["metric_before"] + drop
        marks.append(svg.Mark(floor, f"allowed drop ({num(drop)})", horizontal=True))
    chart = (
        svg.xy_chart(
            "compression",
            series,
            title=f"size vs test {metric}",
            x_label="model size (KB)",
            y_label=f"test {metric}",
            width=620,
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


_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")


def markdown_block(md: str) -> str:
    """The subset of Markdown that benchmarks/RESULTS.md uses: headings, tables, italics, paragraphs."""
    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if _TABLE_LINE.match(line):
            block = []
            while i < len(lines) and _TABLE_LINE.match(lines[i]):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append(
                table(
                    [_inline(c) for c in block[0]],
                    [[_inline(c) for c in r] for r in body],
                    cls="bench",
                )
            )
            continue
        if line.startswith("#"):
            out.append(f"<h4>{_inline(line.lstrip('#').strip())}</h4>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "".join(out)


def _inline(text: str) -> str:
    text = escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w*])_(.+?)_(?!\w)", r"<i>\1</i>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def serving_section(data: RunData) -> str | None:
    if not data.benchmarks:
        return None
    blocks = [markdown_block(b["markdown"]) for b in data.benchmarks]
    return (
        f'<p class="hint">Measured by the project\'s serving benchmark ({escape(data.benchmarks[0]["source"])}), '
        f"not by this run.</p>" + "".join(blocks)
    )


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def lineage_section(data: RunData) -> str:
    card = data.card or {}
    d = card.get("data") or {}
    result = data.result or {}
    search = card.get("search") or {}
    facts = [
        ("run directory", f"<code>{escape(str(data.run_dir))}</code>"),
        ("automodel", escape(str(card.get("automodel_version") or _version("automodel")))),
        ("Ray", escape(str(card.get("ray_version") or _version("ray")))),
        ("torch", escape(str(card.get("torch_version") or _version("torch")))),
        ("Python", escape(str(card.get("python_version") or platform.python_version()))),
        (
            "data source",
            escape(str(d.get("source") or (data.spec.get("data") or {}).get("source") or "–")),
        ),
        ("data sha256", f"<code>{escape(str(d.get('sha256') or '–'))}</code>"),
        ("model created", escape(str(card.get("created") or "–"))),
        (
            "run time",
            f"{num(result.get('wall_s'), 3)} s" if result.get("wall_s") is not None else "–",
        ),
        (
            "search time",
            f"{num(search.get('wall_s'), 3)} s" if search.get("wall_s") is not None else "–",
        ),
        (
            "training time",
            f"{num((card.get('train') or {}).get('wall_s'), 3)} s" if card.get("train") else "–",
        ),
    ]
    return table(None, [[k, v] for k, v in facts], cls="facts")
