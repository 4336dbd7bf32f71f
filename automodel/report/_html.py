"""report.html: one self-contained page (inline CSS, SVG and a few lines of JS; nothing remote)."""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path

from automodel.report import _outcome, _sections
from automodel.report._collect import RunData, load_run

REPORT_NAME = "report.html"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#222;
 margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:20px 28px 60px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:30px 0 8px;padding-top:10px;border-top:1px solid #e3e3e3}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:14px;margin:14px 0 4px}
.sub{color:#666;margin:0 0 14px}.note{color:#777;font-style:italic}.hint{color:#777;font-size:12px;margin:4px 0}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.tile{border:1px solid #dde3ea;border-radius:6px;padding:8px 14px;background:#f8fafc;min-width:110px}
.tile .k{font-size:11px;color:#667;text-transform:uppercase;letter-spacing:.04em}.tile .v{font-size:20px;font-weight:600}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:4px 9px;border-bottom:1px solid #eee;
 text-align:left;vertical-align:top}th{background:#f3f5f7;font-weight:600}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:hover{background:#e6ebf0}
tr.best td{background:#eef7ee;font-weight:600}table.facts td:first-child{color:#555;white-space:nowrap}
.params{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px;color:#444}
.st{padding:1px 6px;border-radius:8px;font-size:11.5px;background:#eee}.st.completed{background:#e3f1e3}
.st.stopped_early{background:#fdf0dc}.st.error,.st.rejected{background:#fbe3e3}.st.qualified{background:#e3ecf7}.st.chosen{background:#cfe9cf;font-weight:600}
.restart{color:#b42318;font-weight:600}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:12px}
svg.plot{width:100%;height:auto;background:#fff}svg.plot[data-size=natural]{width:auto;max-width:100%}
pre{background:#f6f8fa;padding:10px;border-radius:5px;overflow:auto;font-size:12px}
nav{font-size:12.5px;margin:6px 0 0}nav a{margin-right:10px;color:#36c;text-decoration:none}
code{font-size:12px}
"""

# Click a heading to sort by that column; numbers sort as numbers, "–" last.
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var body=t.tBodies[0],rows=Array.from(body.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
  function key(r){var s=r.cells[i].textContent.replace(/,/g,'').trim();var n=parseFloat(s);
   return s==='–'?null:(isNaN(n)||!/^[-+0-9.e]+$/i.test(s)?s:n);}
  rows.sort(function(a,b){var x=key(a),y=key(b);if(x===null)return 1;if(y===null)return -1;
   return (x<y?-1:x>y?1:0)*(asc?1:-1);});rows.forEach(function(r){body.appendChild(r);});});});});
document.body.dataset.ready='1';
"""

SECTIONS = (
    ("summary", "Summary", _sections.summary),
    ("data", "Data", _sections.data_section),
    ("spec", "Spec", _sections.spec_section),
    ("features", "Feature ranking", _sections.features_section),
    ("leaderboard", "Leaderboard", _sections.leaderboard_section),
    ("curves", "Learning curves", _sections.learning_curves),
    ("progress", "Best score vs trials", _sections.best_so_far),
    ("hparams", "Hyperparameters of the winning family", _sections.hyperparameters),
    ("training", "Final training", _outcome.training_section),
    ("test", "Test metrics", _outcome.test_section),
    ("compression", "Compression", _outcome.compression_section),
    ("lineage", "Lineage", _outcome.lineage_section),
)


def render(data: RunData) -> str:
    """The whole page as a string."""
    parts, nav = [], []
    for key, title, fn in SECTIONS:
        body = fn(data)
        if body is None:
            continue
        heading = "" if key == "summary" else f"<h2>{escape(title)}</h2>"
        parts.append(f'<section id="{key}">{heading}{body}</section>')
        if key != "summary":
            nav.append(f'<a href="#{key}">{escape(title)}</a>')
    if data.warnings:
        parts.append(
            '<section id="warnings"><h2>Warnings</h2><ul>'
            + "".join(f"<li>{escape(w)}</li>" for w in data.warnings)
            + "</ul></section>"
        )
    name = (data.card.name if data.card is not None else None) or data.name or data.run_dir.name
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>automodel report: {escape(str(name))}</title><style>{CSS}</style></head><body><main>"
        f"<h1>automodel report: {escape(str(name))}</h1>"
        f'<p class="sub">{escape(str(data.run_dir))} · written {stamp}</p><nav>{"".join(nav)}</nav>'
        f"{''.join(parts)}</main><script>{SORT_JS}</script></body></html>\n"
    )


def write_report(run_dir: str | Path) -> Path:
    """Write (or rewrite) ``<run_dir>/report.html`` from what the run directory holds.

    Raises:
        ReportError: if ``run_dir`` is not a run directory.
    """
    data = load_run(run_dir)
    path = data.run_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path
