"""One function a report section: RunData in, an HTML fragment out (None when there is nothing).

Each section says in plain words what a missing input would have shown, instead of failing.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from html import escape
from typing import Any

from automodel.contracts import JournalLine
from automodel.metrics import better
from automodel.report import _svg as svg
from automodel.report._collect import RunData

MAX_FEATURES_SHOWN = 64


def family_colors(data: RunData) -> dict[str, str]:
    """The same colour for a family in every chart."""
    families = list(
        OrderedDict.fromkeys(
            [r.family for r in data.leaderboard] + [t.family for t in data.trials if t.family]
        )
    )
    return {f: svg.color(i) for i, f in enumerate(families)}


def num(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return escape(str(v))
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return (
        f"{v:.{digits}g}"
        if abs(v) < 1e-3 or abs(v) >= 1e5
        else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    )


def size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def params_text(params: dict[str, Any]) -> str:
    """``k=v, ...`` with floats to 3 significant digits, nested ones too; an ensemble's
    ``members`` as ``family ×weight (its params)``, its hyperparameters."""
    if set(params) == {"members"} and isinstance(params["members"], list):
        return "; ".join(
            f"{escape(str(m.get('family')))} ×{num(m.get('weight'), 2)} "
            f"({params_text(m.get('params') or {})})"
            for m in params["members"]
            if isinstance(m, dict)
        )
    return ", ".join(
        f"{k}={num(v, 3) if isinstance(v, float) else escape(json.dumps(_rounded(v)) if isinstance(v, (list, dict)) else str(v))}"
        for k, v in sorted(params.items())
    )


def _rounded(v: Any) -> Any:
    """``v`` with every float in it to 3 significant digits (for a JSON rendering)."""
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.3g}")
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v


def ensemble_members(data: RunData) -> list[dict] | None:
    """The shipped ensemble's members (family, weight, params), or None for a single model."""
    card = data.card
    if card is None or card.family != "ensemble":
        return None
    members = card.params.get("members")
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else None


def table(
    header: list[str] | None,
    rows: list[list[str]],
    *,
    cls: str = "",
    row_classes: list[str] | None = None,
) -> str:
    """An HTML table (no heading row when ``header`` is None); cells are already-escaped HTML."""
    head = (
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>" if header else ""
    )
    body = "".join(
        f'<tr class="{(row_classes or [""] * len(rows))[i]}">'
        + "".join(f"<td>{c}</td>" for c in r)
        + "</tr>"
        for i, r in enumerate(rows)
    )
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


# ---- summary, spec, data ---------------------------------------------------------------------
def summary(data: RunData) -> str:
    card, metric = data.card, data.metric or "metric"
    tiles = []
    if data.best_family:
        tiles.append(("best model", escape(data.best_family)))
    test = card.metrics.test if card is not None else {}
    if metric in test:
        tiles.append((f"test {metric}", num(test[metric])))
    elif data.leaderboard and data.leaderboard[0].score is not None:
        tiles.append((f"best val {metric}", num(data.leaderboard[0].score)))
    if data.leaderboard:
        tiles.append(("trials", str(len(data.leaderboard))))
    if data.result is not None and data.result.wall_s is not None:
        tiles.append(("run time", f"{num(data.result.wall_s, 3)} s"))
    if (
        card is not None
        and card.compression is not None
        and card.compression.size_bytes_after is not None
    ):
        tiles.append(("model size", size(card.compression.size_bytes_after)))
    elif card is not None and card.onnx is not None and card.onnx.size_bytes is not None:
        tiles.append(("model size", size(card.onnx.size_bytes)))
    html = "".join(
        f'<div class="tile"><div class="k">{k}</div><div class="v">{v}</div></div>'
        for k, v in tiles
    )
    return f'<div class="tiles">{html}</div>{_winner(data, metric)}'


def _winner(data: RunData, metric: str) -> str:
    """One statement of what was shipped and why, agreeing with the card."""
    rows = [r for r in data.leaderboard if r.score is not None]
    if not rows or not data.best_family:
        return ""
    best, n = rows[0], len(data.leaderboard)
    members = ensemble_members(data)
    if members is not None:
        parts = ", ".join(
            f"{escape(str(m.get('family')))} (weight {num(m.get('weight'), 2)})" for m in members
        )
        val = data.card.metrics.val.get(metric) if data.card is not None else None
        score = f" with validation {metric} {num(val)}" if val is not None else ""
        return (
            f"<p>Winner: a weighted ensemble of {parts}{score}; it beat the sweep's best single "
            f"model, {escape(best.family)} (validation {metric} {num(best.score)}, best of {n} "
            "trials), so it was shipped.</p>"
        )
    runner = next((r for r in rows if r.family != best.family), None)
    against = (
        f" against {num(runner.score)} for the best other family ({escape(runner.family)})"
        if runner
        else ""
    )
    return (
        f"<p>Winner: {escape(data.best_family)}, validation {metric} {num(best.score)}{against}, "
        f"over {n} trials.</p>"
    )


def spec_section(data: RunData) -> str | None:
    if not data.spec_text:
        return None
    return f"<details><summary>resolved spec.yaml</summary><pre>{escape(data.spec_text)}</pre></details>"


def data_section(data: RunData) -> str | None:
    d = data.card.data if data.card is not None else None
    if d is None:
        return None
    s = d.summary
    splits = s.splits
    facts = [
        ("source", escape(str(d.source))),
        ("rows", num(s.rows if s.rows is not None else d.rows)),
        ("columns", num(s.columns)),
        ("target", escape(str(s.target or d.target or "–"))),
        ("task", escape(str(s.task or data.card.task))),
        (
            "splits (train / val / test)",
            " / ".join(num(splits.get(k)) for k in ("train", "val", "test")) if splits else "–",
        ),
        ("missing values", num(s.missing_values)),
        ("rows dropped (no target)", num(s.dropped_target_rows)),
        ("columns dropped", escape(", ".join(map(str, s.dropped_columns))) or "none"),
    ]
    out = [table(None, [[k, v] for k, v in facts], cls="facts")]
    counts = s.class_counts
    if counts:
        labels, values = list(counts), [counts[k] for k in counts]
        total = sum(values) or 1
        out.append(
            "<h3>Class balance</h3>"
            + svg.hbar_chart(
                "class-balance",
                labels,
                values,
                colors=[svg.PALETTE[0]] * len(labels),
                x_label="rows",
                notes=[f"({100 * v / total:.1f}%)" for v in values],
            )
        )
    return "".join(out)


def features_section(data: RunData) -> str | None:
    f = data.features
    if f is None or not f.scores:
        return note("No feature ranking was stored for this run (features.json is absent).")
    names, scores = f.names, f.scores
    kept = set(f.kept or names)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    k = f.k
    # Every feature when they fit; else the top ones and a window around the kept-k cut.
    if len(order) <= MAX_FEATURES_SHOWN:
        shown = order
    elif k and k > MAX_FEATURES_SHOWN // 2:
        shown = order[: MAX_FEATURES_SHOWN // 2] + order[k - 8 : k + 8]
    else:
        shown = order[:MAX_FEATURES_SHOWN]
    labels = [
        f"#{order.index(i) + 1} {names[i]}" if len(order) > MAX_FEATURES_SHOWN else names[i]
        for i in shown
    ]
    colors = [svg.PALETTE[0] if names[i] in kept else svg.MUTED for i in shown]
    cut = next((j for j, i in enumerate(shown) if names[i] not in kept), None) if k else None
    chart = svg.hbar_chart(
        "features",
        labels,
        [scores[i] for i in shown],
        colors=colors,
        x_label="mutual information with the target",
        bar=12,
        cut_after=cut,
        cut_label=f"kept k = {k} above" if k else "",
    )
    kept_txt = (
        f"the top <b>k = {k}</b> of {len(names)} encoded features were kept (blue; grey: dropped)"
        if k
        else f"all {len(names)} encoded features were kept (no k was selected; the ranking is informative only)"
    )
    more = f" {len(names) - len(shown)} features are not drawn." if len(names) > len(shown) else ""
    searched = f" k was searched over {escape(str(f.k_range))}." if f.k_range else ""
    return f"<p>Ranked by mutual information; {kept_txt}.{searched}{more}</p>{chart}"


# ---- search -------------------------------------------------------------------------------------
def leaderboard_section(data: RunData) -> str | None:
    if not data.leaderboard:
        return note("No leaderboard: this run did not search (leaderboard.csv is absent).")
    metric = data.metric or "metric"
    header = [
        "#",
        "trial",
        "family",
        f"val {escape(metric)}",
        "iterations",
        "status",
        "k",
        "params",
        "time (s)",
    ]
    rows, classes = [], []
    for i, r in enumerate(data.leaderboard, 1):
        status = escape(r.status)
        rows.append(
            [
                str(i),
                f"<code>{escape(r.trial_id)}</code>",
                escape(r.family),
                num(r.score),
                num(r.iterations),
                f'<span class="st {status}">{status}</span>',
                num(r.k),
                f'<span class="params">{params_text(r.params)}</span>',
                num(r.time_s, 3),
            ]
        )
        classes.append("best" if i == 1 else "")
    return '<p class="hint">Best first; click a column heading to sort.</p>' + table(
        header, rows, cls="sortable leaderboard", row_classes=classes
    )


def _by_trial(data: RunData) -> OrderedDict[str, list[JournalLine]]:
    trials: OrderedDict[str, list[JournalLine]] = OrderedDict()
    for line in data.trials:
        trials.setdefault(line.trial_id, []).append(line)
    return trials


def learning_curves(data: RunData) -> str | None:
    metric = data.metric
    trials = _by_trial(data)
    if not data.leaderboard and not trials:
        return None  # no sweep in this run: the leaderboard section says so
    if not trials or metric is None:
        return note(
            "No learning curves: the sweep's per-iteration results (trials.jsonl) are absent."
        )
    status = {r.trial_id: r.status for r in data.leaderboard}
    best_id = data.leaderboard[0].trial_id if data.leaderboard else None
    colors = family_colors(data)
    series, seen = [], set()
    for tid, lines in trials.items():
        scored = sorted(
            (x for x in lines if x.score(metric) is not None), key=lambda x: x.iteration
        )
        if not scored:
            continue
        fam = scored[0].family or "?"
        stopped = status.get(tid) == "stopped_early"
        series.append(
            svg.Series(
                fam,
                [x.iteration for x in scored],
                [x.score(metric) for x in scored],
                color=colors.get(fam, svg.MUTED),
                marker="circle" if len(scored) == 1 else None,
                size=2.5,
                width=3.2 if tid == best_id else 1.3,
                end_marker="cross" if stopped else None,
                tips=[
                    f"trial {tid} ({fam}) iteration {x.iteration}: {metric} {num(x.score(metric))}"
                    + (" - stopped early by ASHA" if stopped and j == len(scored) - 1 else "")
                    for j, x in enumerate(scored)
                ],
                legend=fam not in seen,
            )
        )
        seen.add(fam)
    if any(status.get(t) == "stopped_early" for t in trials):
        series.append(
            svg.Series("stopped early (ASHA)", [], [], color=svg.INK, line=False, marker="cross")
        )
    chart = svg.xy_chart(
        "learning-curves",
        series,
        title=f"validation {metric} per iteration",
        x_label="iteration (epochs, or growth steps for trees)",
        y_label=f"val {metric}",
    )
    n_stop = sum(1 for t in trials if status.get(t) == "stopped_early")
    return (
        f"<p>Every trial's validation {escape(metric)} as it trained; the thick line is the winner, "
        f"a cross marks a trial ASHA stopped early ({n_stop} of {len(trials)}).</p>{chart}"
    )


def best_so_far(data: RunData) -> str | None:
    """Each trial's final score in completion order, with the running best as a step line."""
    metric = data.metric
    if not data.trials or metric is None:
        return None
    # trials.jsonl is appended as results arrive: a trial's last line is when it finished.
    last_line: dict[str, tuple[int, JournalLine]] = {}
    for n, line in enumerate(data.trials):
        if line.score(metric) is not None:
            last_line[line.trial_id] = (n, line)
    finished = sorted(last_line.values(), key=lambda x: x[0])
    colors = family_colors(data)
    xs, ys, best, best_ys, points = [], [], None, [], []
    for i, (_, line) in enumerate(finished, 1):
        v = line.score(metric)
        best = v if best is None or better(metric, v, best) else best
        xs.append(i)
        ys.append(v)
        best_ys.append(best)
        trained = f" after {num(line.time, 3)} s of training" if line.time is not None else ""
        points.append(
            svg.Series(
                line.family or "?",
                [i],
                [v],
                color=colors.get(line.family or "", svg.MUTED),
                line=False,
                marker="circle",
                size=3.5,
                tips=[f"trial #{i} {line.trial_id} ({line.family}): {metric} {num(v)}{trained}"],
            )
        )
    seen = set()
    for p in points:
        p.legend = p.name not in seen
        seen.add(p.name)
    step_x, step_y = [], []
    for x, y in zip(xs, best_ys):
        if step_y:
            step_x.append(x)
            step_y.append(step_y[-1])
        step_x.append(x)
        step_y.append(y)
    line = svg.Series("best so far", step_x, step_y, color=svg.INK, width=2.2)
    chart = svg.xy_chart(
        "best-so-far",
        [line, *points],
        title=f"best {metric} vs trials completed",
        x_label="trials completed",
        y_label=f"val {metric}",
        height=260,
    )
    at = next((i for i, b in enumerate(best_ys, 1) if b == best_ys[-1]), None)
    return f"<p>The best score was reached after {at} of {len(xs)} trials.</p>{chart}"


def hyperparameters(data: RunData) -> str | None:
    metric, fam = data.metric, data.best_family
    if not data.leaderboard:
        return None
    members = ensemble_members(data)
    intro = ""
    if members is not None:  # the ensemble's hyperparameters are its members and weights
        intro = "<p>The shipped ensemble's members (its hyperparameters):</p>" + table(
            ["family", "weight", "params"],
            [
                [
                    escape(str(m.get("family"))),
                    num(m.get("weight"), 3),
                    f'<span class="params">{params_text(m.get("params") or {})}</span>',
                ]
                for m in members
            ],
        )
        scored = [r for r in data.leaderboard if r.score is not None]
        fam = scored[0].family if scored else None  # the sweep's best family, charted below
    rows = [r for r in data.leaderboard if r.family == fam and r.score is not None]
    if len(rows) < 2:
        if not fam:
            return intro or None
        what = "No scored trial" if not rows else "Only one scored trial"
        return intro + note(f"{what} of {escape(str(fam))}: no hyperparameter comparison to draw.")
    best = rows[0]
    names = sorted({k for r in rows for k in r.params})
    charts = []
    for name in names:
        vals = [(r.params[name], r.score, r) for r in rows if name in r.params]
        distinct = {json.dumps(v, sort_keys=True) for v, _, _ in vals}
        if len(distinct) < 2:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _, _ in vals)
        tips = [
            f"trial {r.trial_id}: {name}={num(v, 3) if numeric else v}, {metric} {num(m)}"
            for v, m, r in vals
        ]
        if numeric:
            xs = [float(v) for v, _, _ in vals]
            log = min(xs) > 0 and max(xs) / min(xs) >= 20
            cats = None
        else:
            cats = sorted(distinct)
            xs = [cats.index(json.dumps(v, sort_keys=True)) for v, _, _ in vals]
            log = False
        pts = svg.Series(
            name, xs, [m for _, m, _ in vals], line=False, marker="circle", tips=tips, legend=False
        )
        top = svg.Series(
            "best trial",
            [xs[vals.index(next(x for x in vals if x[2] is best))]],
            [best.score],
            color=svg.PALETTE[3],
            line=False,
            marker="star",
            legend=False,
            tips=[f"best trial {best.trial_id}"],
        )
        charts.append(
            svg.xy_chart(
                f"hparam-{name}",
                [pts, top],
                title=f"{name} vs {metric}",
                x_label=name + (" (log)" if log else ""),
                y_label=f"val {metric}",
                log_x=log,
                width=460,
                height=280,
                x_categories=[c.strip('"') for c in cats] if cats else None,
            )
        )
    if not charts:
        return intro + note(f"The {len(rows)} {escape(fam)} trials share the same hyperparameters.")
    return intro + (
        f"<p>Each {escape(fam)} trial's validation {escape(metric)} against each hyperparameter that varied; "
        f'the star is the winner.</p><div class="grid">{"".join(charts)}</div>'
    )
