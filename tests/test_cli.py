"""The CLI: `compress` keeps the float artifact unless told --in-place; first runs (issue 22):
errors before heavy imports, and a time budget the sweep uses (real CLI, real files, real Ray)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.compress.conftest import cli, make_artifact, one_thread


def _card(path) -> dict:
    return json.loads((path / "card.json").read_text())


def test_compress_keeps_the_float_artifact(tmp_path):
    with one_thread():
        art = make_artifact(tmp_path / "run" / "artifact", "mlp", {"hidden": [64]}, epochs=2)
    onnx, card = (art / "model.onnx").read_bytes(), _card(art)

    r = cli("-q", "compress", str(tmp_path / "run"), "--quantize", "int8", "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run" / "artifact-compressed"
    assert f"float artifact kept: {art}" in r.stdout
    assert (art / "model.onnx").read_bytes() == onnx and _card(art) == card  # untouched
    assert _card(out)["compression"]["chosen"] == "int8"
    assert (out / "model.onnx").stat().st_size < len(onnx)

    # The float artifact can be compressed again (here into --out), which an in-place run forbade.
    r = cli("-q", "compress", str(art), "--out", str(tmp_path / "again"), "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    assert _card(tmp_path / "again")["compression"]["chosen"] == "int8"

    # --in-place is today's behaviour: the artifact itself becomes the compressed one.
    r = cli("-q", "compress", str(art), "--in-place", "--max-metric-drop", "1")
    assert r.returncode == 0, r.stderr
    assert _card(art)["compression"]["chosen"] == "int8" and "float artifact kept" not in r.stdout

    r = cli("compress", str(art), "--in-place", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


# ---- first runs: fixed costs (issue 22) --------------------------------------------------------
HEAVY = ("torch", "sklearn", "pandas", "ray", "onnxruntime", "lightgbm")


def _modules_after(tmp_path, *argv: str) -> tuple[int, list[str], str]:
    """``main(argv)`` in a fresh interpreter: its exit code, which heavy modules it imported, stderr."""
    code = (
        "import sys, json; from automodel.cli import main\n"
        "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as exc:\n    rc = exc.code\n"
        f"print(json.dumps([rc, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path
    )
    rc, heavy = json.loads(r.stdout.strip().splitlines()[-1])
    return rc, heavy, r.stderr


def test_spec_and_data_path_errors_come_before_any_heavy_import(tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,1\n")
    (tmp_path / "typo.yaml").write_text("data: {source: t.csv, taget: y}\n")
    (tmp_path / "missing.yaml").write_text("data: {source: nowhere.csv, target: y}\n")
    for argv in (["run", "typo.yaml"], ["run", "missing.yaml"], ["validate", "typo.yaml"]):
        rc, heavy, err = _modules_after(tmp_path, *argv)
        assert rc == 2 and heavy == [], (argv, heavy, err)
        assert len(err.strip().splitlines()) == 1 and "data." in err, err
    # parsing a stage's command imports that stage's CLI only (compress would load torch)
    rc, heavy, err = _modules_after(tmp_path, "predict", "--help")
    assert rc == 0 and heavy == [], (heavy, err)


def test_a_run_imports_torch_only_to_fit_a_torch_model():
    """What `automodel run` imports while Ray starts (the pipeline), builds a sweep's space from
    (torch families included) and fits a fallback or scikit-learn winner with loads no torch and
    no scikit-learn estimator it does not fit; a torch family's fit does load torch."""
    code = (
        "import json, sys\n"
        "import automodel.pipeline\n"
        "from automodel.models import FAMILIES\n"
        "from automodel.search import family_spaces\n"
        "from automodel.spec import spec_from_dict\n"
        "spec = spec_from_dict({'search': {'families': ['mlp', 'cnn', 'logistic', 'svm']}})\n"
        "spaces = family_spaces(spec, 'classification', imbalanced=True)\n"
        "FAMILIES['logistic']('classification', 2, 2).fit([[0, 1], [1, 0]] * 5, [0, 1] * 5)\n"
        "seen = [m for m in ('torch', 'sklearn.ensemble', 'sklearn.calibration') if m in sys.modules]\n"
        "FAMILIES['mlp']\n"
        "print(json.dumps([seen, 'torch' in sys.modules, sorted(spaces['mlp'])]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    seen, torch_after, mlp_space = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen == [] and torch_after, (seen, torch_after)
    # the torch-free space is the family's own, with class weights on an imbalanced target
    assert "class_weight" in mlp_space and {"hidden", "layers", "lr"} <= set(mlp_space)


def test_every_command_is_still_listed_and_deploy_keeps_docker():
    r = subprocess.run(
        [sys.executable, "-m", "automodel.cli", "--help"], capture_output=True, text=True
    )
    for command in (
        "run",
        "validate",
        "tune",
        "train",
        "compress",
        "serve",
        "deploy",
        "submit",
        "report",
        "predict",
    ):
        assert command in r.stdout, r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "automodel.cli", "deploy", "--help"], capture_output=True, text=True
    )
    assert "--docker" in r.stdout and "--public" in r.stdout, r.stdout


class _Lines:
    """Progress lines, kept: what the run said about the sweep's share and its end."""

    def __init__(self):
        self.quiet, self.lines = False, []

    def __call__(self, stage: str, message: str) -> None:
        self.lines.append(f"{stage}: {message}")


@pytest.mark.ray
@pytest.mark.slow
def test_time_budget_without_num_samples_searches_until_its_share_is_used(ray_cluster, tmp_path):
    from automodel.pipeline import run
    from automodel.spec import spec_from_dict

    raw = {
        "name": "budget",
        "data": {"source": "synthetic:classification?rows=400&features=8"},
        # two fast families: their default 8 trials end in a few seconds, far short of the share
        "search": {"families": ["logistic", "random_forest"], "ensemble": False},
    }
    said = _Lines()
    result = run(spec_from_dict(raw), tmp_path / "a", progress=said, time_budget_s=40)
    share_line = next(line for line in said.lines if "s of the run's 40s budget" in line)
    share = float(re.search(r"search: (\d+)s of the run's", share_line).group(1))
    wall = result.search.wall_s
    print(
        f"sweep share {share:.0f} s, sweep wall {wall:.1f} s, {len(result.search.leaderboard)} trials"
    )
    assert wall >= 0.8 * share, (wall, share, said.lines)
    assert any("search: budget used after" in line for line in said.lines), said.lines
    # and the summary line counts what ran and what could not start
    assert any(re.search(r"best .*; \d+ trials? scored", line) for line in said.lines), said.lines

    # an explicit search.num_samples is kept: the sweep stops at it
    raw["search"]["num_samples"] = 2
    said = _Lines()
    result = run(spec_from_dict(raw), tmp_path / "b", progress=said, time_budget_s=40)
    board = result.search.leaderboard  # (a loaded machine may add the budget's fallback row)
    assert (board["status"] != "fallback").sum() == 2, board
