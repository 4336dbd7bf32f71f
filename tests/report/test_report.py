"""report.html from a real run directory (tests/report/conftest.py): every section, what each
absent part turns into, old and broken files, the CLI."""

from __future__ import annotations

import csv
import json
import re
import shutil

import pytest

from automodel.contracts import Card
from automodel.report import ReportError, write_report
from tests.conftest import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REMOTE = re.compile(r"""(?:https?:|ftp:)?//[\w.-]+\.\w|url\(|@import|<link\b|\bsrc\s*=""", re.I)


def plots(html: str) -> set[str]:
    return set(re.findall(r'<svg class="plot" data-plot="([^"]+)"', html))


def assert_self_contained(html: str) -> None:
    hits = REMOTE.findall(html)
    assert not hits, f"report references something outside itself: {hits[:5]}"


def section(html: str, key: str) -> str:
    return html.split(f'<section id="{key}">')[1].split("</section>")[0]


@pytest.fixture
def run_copy(pipeline_run, tmp_path):
    """A copy of the real run directory that a test may cut down."""
    run, _, _ = pipeline_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tune", "train", "tensorboard"))
    return copy


def test_every_section_of_a_real_run(pipeline_run):
    run, _, _ = pipeline_run
    html = (run / "report.html").read_text()
    card = Card.read(run / "artifact/card.json")
    board = list(csv.DictReader((run / "leaderboard.csv").open()))
    drawn = {"class-balance", "features", "learning-curves", "best-so-far", "test-metrics"}
    # The final fit's curves, when it has them (a refit tree has neither loss nor validation).
    if any(r.train_loss is not None for r in card.history):
        drawn.add("train-loss")
    if any(r.val() for r in card.history):
        drawn.add("train-metric")
    assert drawn | {"compression"} <= plots(html)
    # Leaderboard: one row a trial, the CSV's order, the CSV's best first.
    rows = section(html, "leaderboard")
    assert rows.count("<tr") == 1 + len(board)
    first = re.search(r'<tr class="best"><td>1</td><td><code>(\w+)</code>', rows).group(1)
    assert first == board[0]["trial_id"]
    # ASHA's early stops, as the leaderboard records them, are crossed on the learning curves.
    curves = html.split('data-plot="learning-curves"')[1].split("</svg>")[0]
    stopped = {r["trial_id"] for r in board if r["status"] == "stopped_early"}
    assert len(
        set(re.findall(r"trial (\w+) \([^)]*\) iteration \d+: [^<]*stopped early", curves))
    ) == len(stopped)
    # Test metrics: the card's, and the baseline that predicts the majority class is worse.
    metrics = section(html, "test")
    assert "baseline (majority class), test" in metrics
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["baseline"]["accuracy"] < card.metrics.test["accuracy"]
    # ... which is the share of one class (the training split's most common) in the test split.
    shares = [sum(row) / evaluation["n"] for row in evaluation["confusion_matrix"]]
    assert min(abs(evaluation["baseline"]["accuracy"] - s) for s in shares) < 1e-9
    # Compression: one row is shipped; for a torch model it is the variant the card chose, each
    # variant the gate tried has a row; a scikit-learn model keeps its float model and says why.
    table = html.split('class="compression"')[1].split("</table>")[0]
    statuses = dict(re.findall(r"<tr[^>]*><td>([^<]+)</td>.*?class=\"st (\w+)\"", table))
    assert list(statuses.values()).count("chosen") == 1
    if card.compression.variants:
        assert statuses[card.compression.chosen] == "chosen"
        assert set(statuses) == {v.variant for v in card.compression.variants}
    else:
        assert card.compression.chosen == "float" and "scikit-learn" in section(html, "compression")
    # No restart in this run: the training section says none.
    assert card.restart_epochs == [] and "worker restart" not in html
    # This run's facts only: no benchmark tables from the repository.
    assert "Serving benchmark" not in html and "HAProxy" not in html
    assert card.data.sha256 in section(html, "lineage")


def test_partial_run_dirs_skip_what_is_absent(run_copy, tmp_path):
    # A sweep alone (`automodel tune`): leaderboard only.
    tune_only = tmp_path / "tune_only"
    tune_only.mkdir()
    shutil.copy(run_copy / "leaderboard.csv", tune_only)
    html = write_report(tune_only).read_text()
    assert "No learning curves" in html and "did not train" in html
    assert "test-metrics" not in plots(html) and 'class="sortable leaderboard"' in html
    # A trained model without search, history or compression (`automodel train` of a tree).
    train_only = tmp_path / "train_only"
    (train_only / "artifact").mkdir(parents=True)
    card = json.loads((run_copy / "artifact/card.json").read_text())
    for key in ("history", "compression", "search"):
        card.pop(key)
    (train_only / "artifact/card.json").write_text(json.dumps(card))
    html = write_report(train_only).read_text()
    assert "No leaderboard" in html and "was not compressed" in html
    assert "no confusion matrix" in html and "no per-epoch history" in html
    assert "No learning curves" not in html and "Hyperparameters" not in html
    # A torn last line in trials.jsonl (a sweep killed mid-write) is a warning, not a failure.
    with (run_copy / "trials.jsonl").open("a") as fh:
        fh.write('{"trial_id": "t0')
    html = write_report(run_copy).read_text()
    assert "learning-curves" in plots(html) and "is not JSON; skipped" in html


def test_cards_from_before_contracts_load_and_broken_ones_are_named(run_copy):
    path = run_copy / "artifact/card.json"
    card = json.loads(path.read_text())
    # Version 0: an artifact written before cards carried a schema_version.
    path.write_text(json.dumps({k: v for k, v in card.items() if k != "schema_version"}))
    html = write_report(run_copy).read_text()
    assert f'<div class="v">{card["family"]}</div>' in html and "Warnings" not in html
    # A card that does not fit: the report says which file and why, and still shows the rest.
    path.write_text(json.dumps({**card, "history": [{"epoch": "first"}]}))
    html = write_report(run_copy).read_text()
    warnings = section(html, "warnings")
    assert "card.json: not a valid Card" in warnings and "history.0.epoch" in warnings
    assert 'class="sortable leaderboard"' in html
    # From a newer automodel: say so, do not guess.
    path.write_text(json.dumps({**card, "schema_version": 99}))
    assert "written by a newer automodel" in section(write_report(run_copy).read_text(), "warnings")


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        write_report(tmp_path)
    with pytest.raises(ReportError, match="not a directory"):
        write_report(tmp_path / "missing")


def test_cli_report_rewrites_and_rejects(run_copy, tmp_path):
    (run_copy / "report.html").unlink()
    r = run_cli("report", str(run_copy), timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"report: {run_copy / 'report.html'}" in r.stdout
    html = (run_copy / "report.html").read_text()
    assert_self_contained(html)
    assert "learning-curves" in plots(html)
    r = run_cli("report", str(tmp_path / "nope"), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "not a directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_one_winner_wide_charts_rounded_params(pipeline_run):
    """The header names the model the card ships, once; charts are drawn at the page's width with
    labels of 12 px or more; hyperparameters read to 3 significant digits."""
    run, _, _ = pipeline_run
    html = (run / "report.html").read_text()
    card = Card.read(run / "artifact/card.json")
    summary = section(html, "summary")
    assert summary.count("<p>Winner: ") == 1 and "won the sweep" not in html
    if card.family == "ensemble":
        assert "<p>Winner: a weighted ensemble of " in summary
    else:
        assert f"<p>Winner: {card.family}, validation " in summary
    for svg in re.findall(r'<svg class="plot"[^>]*>', html):
        if "data-size" not in svg:  # the confusion matrix keeps its own size
            assert int(re.search(r'viewBox="0 0 (\d+)', svg).group(1)) >= 460, svg
    assert not re.findall(r'font-size="(?:[0-9]|1[01])(?:\.\d)?"', html)
    assert "svg.plot{width:100%" in html
    params = " ".join(re.findall(r'<span class="params">([^<]*)</span>', html))
    digits = [m.rstrip("0") for m in re.findall(r"\d+\.(\d+)", params)]
    assert params and all(len(d.lstrip("0")) <= 3 for d in digits), params
    refit = (card.train.model_extra or {}).get("refit")
    if refit:
        assert "The winner retrained on train + validation." in section(html, "training")


def test_an_ensemble_reads_as_its_members(digits):
    """A real ensemble's card params: each member, its weight and its parameters, rounded."""
    from automodel.report._sections import params_text
    from automodel.search import select_ensemble
    from automodel.spec import spec_from_dict
    from tests.search.test_ensemble import _result

    trials = [
        ("logistic", {"C": 0.0512345678, "max_iter": 500}),
        ("random_forest", {"n_estimators": 40, "max_depth": None, "max_features": "sqrt"}),
    ]
    spec = spec_from_dict({"search": {"max_epochs": 5}})
    ens = select_ensemble(spec, digits, _result("accuracy", trials))
    assert ens is not None
    text = params_text(ens.params)
    parts = text.split("; ")
    assert [p.split(" ×")[0] for p in parts] == [m["family"] for m in ens.params["members"]]
    assert "logistic ×" in text and "(C=0.051, max_iter=500)" in text, text
    for part, w in zip(parts, ens.weights):
        assert part.split(" ×")[1].split(" ")[0] == f"{w:.2f}".rstrip("0").rstrip("."), text
