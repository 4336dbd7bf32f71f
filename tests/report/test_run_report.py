"""A real small `automodel run` with tracking on: its report, MLflow store, TensorBoard events, and
the report rendered by headless Chromium (screenshots kept in tests/report/output/ for review)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.report.test_report import assert_self_contained, plots

pytestmark = [pytest.mark.ray, pytest.mark.slow]

OUTPUT = Path(__file__).resolve().parent / "output"


def test_report_of_a_real_run(pipeline_run):
    run, r, _ = pipeline_run
    html = (run / "report.html").read_text()
    assert_self_contained(html)
    card = json.loads((run / "artifact/card.json").read_text())
    metric = card["metric"]
    # The headline names the best family and its test metric, as the CLI printed them.
    assert f'<div class="v">{card["family"]}</div>' in html
    test = card["metrics"]["test"][metric]
    assert f"test {metric}: {test:.4f}" in r.stdout
    tile = re.search(rf'<div class="k">test {metric}</div><div class="v">([\d.]+)</div>', html)
    assert float(tile.group(1)) == pytest.approx(test, abs=1e-4)
    # The searched k is marked on the feature ranking (every section: tests/report/test_report.py).
    assert "k was searched over [4, 13]" in html
    assert (run / "trials.jsonl").is_file() and card["compression"]
    assert {"learning-curves", "best-so-far", "compression"} <= plots(html)
    # Progress: stage lines, trial counts with the best so far, and where the report is.
    assert re.search(r"search: trial 6/6 .*\(best \d\.\d{4}\)", r.stderr)
    assert f"report: {run / 'report.html'}" in r.stderr


def test_mlflow_store_holds_a_run_per_trial_and_the_final_model(pipeline_run):
    run, _, cwd = pipeline_run
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file:{cwd / 'mlruns'}")
    exp = client.get_experiment_by_name("reportcheck")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=100)
    card = json.loads((run / "artifact/card.json").read_text())
    metric = card["metric"]
    trial_ids = {
        line.split(",")[0] for line in (run / "leaderboard.csv").read_text().splitlines()[1:]
    }
    trials = {
        r.data.tags.get("trial_id"): r
        for r in runs
        if r.data.tags.get("automodel.stage") == "search"
    }
    assert set(trials) == trial_ids
    for r in trials.values():
        assert r.info.status == "FINISHED"
        assert r.data.params["family"] in ("logistic", "mlp", "random_forest")
        assert 0.0 <= r.data.metrics[metric] <= 1.0
    (final,) = [r for r in runs if r.info.run_name == "final"]
    assert final.data.params["family"] == card["family"]
    for name, value in card["metrics"]["test"].items():
        assert final.data.metrics[f"test_{name}"] == pytest.approx(value)
    artifacts = {a.path for a in client.list_artifacts(final.info.run_id)}
    assert {"card.json", "report.html"} <= artifacts


def test_tensorboard_events_for_trials_and_final_model(pipeline_run):
    run, _, _ = pipeline_run
    trial_ids = [
        line.split(",")[0] for line in (run / "leaderboard.csv").read_text().splitlines()[1:]
    ]
    for tid in trial_ids:
        assert list((run / "tune" / tid).glob("events.out.tfevents.*")), tid
    (final,) = list((run / "tensorboard" / "final").glob("events.out.tfevents.*"))
    assert final.stat().st_size > 100


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def render(report: Path, shot: Path) -> None:
    """Open the report in headless Chromium with no network: the page script must run without
    a console error, and a full-height screenshot is written to ``shot``."""
    browser = _chromium()
    base = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, "the page script did not finish"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    shot.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        [*base, "--window-size=1100,7200", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    width, height = _png_size(shot)
    assert (width, height) == (
        1100,
        7200,
    ) and shot.stat().st_size > 50_000  # a drawn page, not a blank one
    print(f"screenshot of {report}: {shot}")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (.ci/apt-packages)")
def test_report_renders_in_headless_chromium(pipeline_run):
    run, _, _ = pipeline_run
    render(run / "report.html", OUTPUT / "report_real_run.png")


def test_quiet_train_stage_writes_its_report(tmp_path):
    """`automodel --quiet train` on a regression: no progress lines, and the report shows what
    training has, predicted against actual from the artifact's own model."""
    (tmp_path / "spec.yaml").write_text(
        'name: quiet\ndata: {source: "builtin:diabetes"}\nmodel: {family: logistic}\n'
        "train: {num_workers: 1}\n"
    )
    r = run_cli("--quiet", "train", "spec.yaml", "--out", "run", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not re.search(r"^\[\s*\d+\.\ds\] ", r.stderr, re.M), r.stderr
    assert len(r.stdout.strip().splitlines()) == 1 and r.stdout.startswith("trained logistic")
    run = tmp_path / "run"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["task"] == "regression" and len(evaluation["y_true"]) == evaluation["n"] > 50
    html = (run / "report.html").read_text()
    assert (
        "test-metrics" in plots(html) and "predicted vs actual" in html and "No leaderboard" in html
    )
