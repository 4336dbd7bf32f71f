"""report.html from run directories written as plain files: every section, every absence, the CLI."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from automodel.report import ReportError, write_report
from tests.conftest import run_cli
from tests.report.fakerun import write_fake_run

REMOTE = re.compile(r"""(?:https?:|ftp:)?//[\w.-]+\.\w|url\(|@import|<link\b|\bsrc\s*=""", re.I)


def plots(html: str) -> set[str]:
    return set(re.findall(r'<svg class="plot" data-plot="([^"]+)"', html))


def assert_self_contained(html: str) -> None:
    hits = REMOTE.findall(html)
    assert not hits, f"report references something outside itself: {hits[:5]}"


def test_full_classification_run(tmp_path):
    run = write_fake_run(tmp_path / "run")
    path = write_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    assert_self_contained(html)
    assert {
        "class-balance",
        "features",
        "learning-curves",
        "best-so-far",
        "train-loss",
        "train-metric",
        "test-metrics",
        "compression",
    } <= plots(html)
    assert any(p.startswith("hparam-") for p in plots(html))
    card = json.loads((run / "artifact/card.json").read_text())
    # The headline: best family and its test metric.
    assert f'<div class="v">{card["family"]}</div>' in html
    assert '<div class="k">test accuracy</div><div class="v">0.9722</div>' in html
    # Leaderboard: one row a trial, best first, sortable.
    board = html.split('<section id="leaderboard">')[1].split("</section>")[0]
    assert board.count("<tr") == 1 + 9 and 'class="sortable leaderboard"' in board
    first = re.search(r'<tr class="best"><td>1</td><td><code>(\w+)</code>', board).group(1)
    assert first == (run / "leaderboard.csv").read_text().splitlines()[1].split(",")[0]
    # ASHA's early stops are marked on the curves; restarts on the training history.
    curves = html.split('data-plot="learning-curves"')[1].split("</svg>")[0]
    assert curves.count("stopped early by ASHA") == 4  # trials 2, 3, 6, 7
    assert "worker restart" in html.split('data-plot="train-loss"')[1].split("</svg>")[0]
    # Kept k is marked on the feature ranking; compression shows chosen and rejected variants.
    assert "k = 48</b> of 64" in html and "kept k = 48 above" in html
    comp = html.split('data-plot="compression"')[1].split("</svg>")[0]
    assert "pruned+int8 (chosen)" in comp and "int8 (rejected)" in comp and "drop 0.0611" in comp
    table = html.split('class="compression"')[1].split("</table>")[0]
    statuses = re.findall(r"<tr[^>]*><td>([^<]+)</td>.*?class=\"st (\w+)\"", table)
    assert statuses == [
        ("float", "baseline"),
        ("pruned", "qualified"),
        ("int8", "rejected"),
        ("pruned+int8", "chosen"),
    ]
    # Serving numbers, spec, data summary and lineage.
    assert "Ray Serve (HAProxy)" in html and "1,570" in html
    assert "resolved spec.yaml" in html and "quantize: int8" in html
    assert "missing values" in html and "1,797" in html
    for item in ("automodel", "Ray", "torch", "data sha256", "ab" * 32, "88.8 s"):
        assert item in html


def test_regression_run_plots_predicted_vs_actual(tmp_path):
    html = write_report(write_fake_run(tmp_path / "run", task="regression")).read_text()
    assert "test-metrics" in plots(html) and "class-balance" not in plots(html)
    assert "predicted vs actual" in html and "test r2" in html


def test_partial_run_dirs_skip_what_is_absent(tmp_path):
    full = write_fake_run(tmp_path / "full")
    # A sweep alone (`automodel tune`): leaderboard only.
    tune_only = tmp_path / "tune"
    tune_only.mkdir()
    shutil.copy(full / "leaderboard.csv", tune_only)
    html = write_report(tune_only).read_text()
    assert (
        "No learning curves" in html
        and "did not train" in html
        and "test-metrics" not in plots(html)
    )
    assert 'class="sortable leaderboard"' in html
    # A trained model without search, history or compression (`automodel train`).
    train_only = tmp_path / "train"
    (train_only / "artifact").mkdir(parents=True)
    card = json.loads((full / "artifact/card.json").read_text())
    for key in ("history", "compression", "search"):
        card.pop(key)
    (train_only / "artifact/card.json").write_text(json.dumps(card))
    html = write_report(train_only).read_text()
    assert (
        "No leaderboard" in html and "was not compressed" in html and "no confusion matrix" in html
    )
    assert "No learning curves" not in html and "Hyperparameters" not in html
    assert "no per-epoch history" in html
    # A torn last line in trials.jsonl (sweep killed mid-write) is a warning, not a failure.
    with (full / "trials.jsonl").open("a") as fh:
        fh.write('{"trial_id": "t0')
    html = write_report(full).read_text()
    assert "learning-curves" in plots(html) and "is not JSON; skipped" in html


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        write_report(tmp_path)
    with pytest.raises(ReportError, match="not a directory"):
        write_report(tmp_path / "missing")


def test_cli_report_rewrites_and_rejects(tmp_path):
    run = write_fake_run(tmp_path / "run")
    r = run_cli("report", str(run), timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"report: {run / 'report.html'}" in r.stdout
    assert "learning-curves" in plots((run / "report.html").read_text())
    r = run_cli("report", str(tmp_path / "nope"), timeout=120)
    assert r.returncode == 2
    assert (
        r.stderr.strip().count("\n") == 0
        and "not a directory" in r.stderr
        and "Traceback" not in r.stderr
    )
